package io.flightpickle;

/**
 * The process's native heap as the native library can act on it: glibc's malloc keeps memory
 * that native code freed for reuse, so a long-lived JVM's resident size creeps up although the
 * memory in use does not; {@link #returnFreedMemory()} hands those free pages back.
 */
public final class NativeMemory {

    /** What one {@link #returnFreedMemory()} did. */
    public enum Trim {
        /** Some freed memory went back to the operating system. */
        RELEASED,
        /** There was none the C library could give back. */
        NOTHING_TO_RELEASE,
        /** This C library has no such call (not glibc); nothing was done. */
        UNSUPPORTED
    }

    private NativeMemory() {}

    /**
     * Asks the C library to give freed heap memory back to the operating system. Takes the
     * allocator's locks for a moment, so it is for a background thread at a slow pace.
     *
     * @throws UnsatisfiedLinkError if the native library is not loaded ({@link NativeCore})
     */
    public static Trim returnFreedMemory() {
        int code = Native.mallocTrim();
        return switch (code) {
            case 1 -> Trim.RELEASED;
            case 0 -> Trim.NOTHING_TO_RELEASE;
            case -1 -> Trim.UNSUPPORTED;
            default -> throw new IllegalStateException("the native library returned " + code
                    + " from mallocTrim, which this jar does not read; are they of the same version?");
        };
    }
}
