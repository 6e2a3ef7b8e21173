package io.flightpickle;

import java.util.Objects;

/** Reads what a pickle would import and call, in the native core, without running it. */
public final class PickleInspector {

    private PickleInspector() {}

    /** @throws NativeException ({@code unreadable_pickle}) if the bytes are not a pickle */
    public static PickleImports inspect(byte[] pickle) {
        Objects.requireNonNull(pickle, "pickle");
        return NativeEntries.read(Native.inspectPickle(pickle)).imports();
    }
}
