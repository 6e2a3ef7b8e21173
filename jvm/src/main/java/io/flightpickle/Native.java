package io.flightpickle;

/**
 * The native methods of the flightpickle core, implemented in Rust by {@code jvm/native}.
 *
 * <p>This class is the whole JNI surface: it takes and returns plain JVM types only (byte arrays
 * in, strings out), so that everything else in the plugin stays ordinary Java that can be tested
 * without the library. The typed API over it is {@link Envelope}, {@link PickleInspector} and
 * {@link CommandInspector}.
 *
 * <p>Every method throws {@link NativeException} for a Rust error or panic, whatever bytes it is
 * given; none of them can bring the JVM down. Results are arrays of entries tagged by their first
 * character ({@code H} header field, {@code M} module, {@code G} global, {@code C} call), read by
 * {@link NativeEntries}.
 */
public final class Native {

    static {
        NativeLibrary.load();
    }

    private Native() {}

    /** The version of the Rust core compiled into the loaded library. */
    public static native String coreVersion();

    /** The header of a sealed frame, parsed but not verified. */
    static native String[] readEnvelope(byte[] frame);

    /**
     * The header of a sealed frame once verified: signature (with the key given, both null for
     * none), then digest. The Python version is not checked.
     */
    static native String[] verifyEnvelope(byte[] frame, byte[] keyId, byte[] key, boolean requireSignature);

    /** The modules, globals and calls of a plain pickle, read without running it. */
    static native String[] inspectPickle(byte[] pickle);

    /**
     * The same for a Spark UDF command: a sealed one (a pickle that only calls
     * {@code flightpickle.sealing.load_sealed} on a frame) has its frame verified as by
     * {@link #verifyEnvelope} and its header included; the entries describe the pickle inside.
     */
    static native String[] inspectCommand(byte[] command, byte[] keyId, byte[] key, boolean requireSignature);

    /** Panics in Rust with this message; exists so tests can show a panic becomes an exception. */
    static native void panicForTesting(byte[] message);
}
