package io.flightpickle;

import java.util.SortedSet;

/**
 * What loading a pickle would import and call, read by the native core without running it.
 *
 * @param modules every module that loading imports
 * @param globals every {@code module.name} the pickle names
 * @param calls the globals among them that loading calls
 */
public record PickleImports(SortedSet<String> modules, SortedSet<String> globals, SortedSet<String> calls) {

    public PickleImports {
        modules = java.util.Collections.unmodifiableSortedSet(new java.util.TreeSet<>(modules));
        globals = java.util.Collections.unmodifiableSortedSet(new java.util.TreeSet<>(globals));
        calls = java.util.Collections.unmodifiableSortedSet(new java.util.TreeSet<>(calls));
    }
}
