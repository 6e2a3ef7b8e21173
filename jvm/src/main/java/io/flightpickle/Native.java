package io.flightpickle;

/**
 * The native methods of the flightpickle core, implemented in Rust by {@code jvm/native}.
 *
 * <p>This class is the whole JNI surface: it takes and returns plain JVM types only, so that
 * everything else in the plugin stays ordinary Java that can be tested without the library.
 */
public final class Native {

    static {
        NativeLibrary.load();
    }

    private Native() {}

    /** The version of the Rust core compiled into the loaded library. */
    public static native String coreVersion();
}
