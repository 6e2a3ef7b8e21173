package io.flightpickle;

/**
 * The native core as the plugin uses it: loaded, and known to come from the same sources as
 * the jar.
 */
public final class NativeCore {

    private NativeCore() {}

    /**
     * Loads the native library if this class loader has not yet, and checks its version.
     *
     * @return the core version, equal to {@link BuildInfo#version()}
     * @throws IllegalStateException if the library is of another version than the jar
     */
    public static String loadMatchingVersion() {
        String loadedFrom = NativeLibrary.load();
        String coreVersion = Native.coreVersion();
        requireSameVersion(BuildInfo.version(), coreVersion, loadedFrom);
        return coreVersion;
    }

    /**
     * Fails unless the jar and the library agree. The JNI functions and the jar's classes change
     * together, so a library of another version could call or be called with the wrong shapes.
     */
    static void requireSameVersion(String jarVersion, String coreVersion, String loadedFrom) {
        if (!jarVersion.equals(coreVersion)) {
            throw new IllegalStateException("flightpickle version mismatch: the plugin jar is "
                    + jarVersion + " but the native library loaded from " + loadedFrom
                    + " has core " + coreVersion + ". A lib" + NativeLibrary.LIBRARY_NAME
                    + ".so on java.library.path takes precedence over the one in the jar:"
                    + " remove it, or rebuild it and the jar from the same sources (make jar).");
        }
    }
}
