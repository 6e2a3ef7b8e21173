package io.flightpickle;

import java.util.Collections;
import java.util.SortedSet;
import java.util.TreeSet;

/**
 * What loading a pickle would import and call, read by the native core without running it.
 *
 * @param modules every module that loading imports
 * @param globals every {@code module.name} the pickle names
 * @param calls the globals among them that loading calls
 */
public record PickleImports(SortedSet<String> modules, SortedSet<String> globals, SortedSet<String> calls) {

    public PickleImports {
        modules = Collections.unmodifiableSortedSet(new TreeSet<>(modules));
        globals = Collections.unmodifiableSortedSet(new TreeSet<>(globals));
        calls = Collections.unmodifiableSortedSet(new TreeSet<>(calls));
    }
}
