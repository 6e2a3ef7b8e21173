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

    /**
     * The sealed frame that a sealed command (a pickle that only calls
     * {@code flightpickle.sealing.load_sealed} on a frame) loads, not verified; null for any other
     * command.
     */
    static native byte[] sealedFrame(byte[] command);

    /**
     * The header (not verified) of the sealed frame in the broadcast file of a command too large
     * for tasks ({@code path} in UTF-8): PySpark pickles such a command once more, as bytes, into
     * that file. Throws, naming why, when the file holds no sealed command.
     */
    static native String[] broadcastCommandHeader(byte[] path);

    /**
     * Connects to the executor service at {@code endpoint} (UTF-8: a Unix socket path, or a remote
     * pool's {@code grpc://host:port} or {@code grpc+tls://host:port}, with its bearer token and
     * PEM CA certificates in {@code token} and {@code tlsCa}, null when there are none) and opens
     * a stream of evaluation kind {@code kind} (the protocol's byte) for the function
     * with digest {@code digest}: the sealed frame {@code envelope}, or the one in the command
     * broadcast file {@code broadcastFile} (a UTF-8 path, read only if the service asks for the
     * function); one of the two is null. {@code groupKeys} are the group key column names (grouped
     * kinds), each in UTF-8 followed by a NUL byte; empty for none. The schemas are addresses of
     * {@code ArrowSchema} structs the caller exported; this call takes them over. Returns the
     * stream's handle, for {@link ExecutorStream} only.
     */
    static native long streamOpen(byte[] endpoint, byte[] token, byte[] tlsCa, int kind, byte[] envelope,
            byte[] broadcastFile, byte[] digest, byte[] groupKeys, long inputSchema, long outputSchema, int window,
            long timeoutMillis, long bodyLimit);

    /**
     * Sends the batch the caller exported (as a struct array) into the {@code ArrowArray} and
     * {@code ArrowSchema} at these addresses; the structs are taken over, and their buffers
     * released, before this returns.
     */
    static native void streamPush(long stream, long array, long schema);

    /**
     * Cancels a stream from another thread than its owner's, which may be blocked in it: the
     * owner's calls then fail with kind {@code cancelled}. Never concurrent with {@link #streamClose}.
     */
    static native void streamCancel(long stream);

    /** Tells the service that every input batch was pushed. */
    static native void streamFinish(long stream);

    /**
     * Exports the next result batch into the empty structs at these addresses. Waiting, false
     * means every result was pulled; not waiting, false means none has arrived yet.
     */
    static native boolean streamPull(long stream, long array, long schema, boolean wait);

    /**
     * What the service measured serving the stream, as tagged entries ({@code S<field>=<value>}),
     * once its final status arrived; empty before that, or when the service sent none.
     */
    static native String[] streamStats(long stream);

    /** Closes the stream's connection and frees it; the handle is invalid afterwards. */
    static native void streamClose(long stream);

    /**
     * Installs the C release callback of an {@code ArrowArray} (or {@code ArrowSchema}) that Arrow
     * Java exported: releasing it closes {@code privateData}. Arrow Java's C Data classes call this
     * through the plugin's own {@code JniWrapper}.
     */
    public static native void arrowExport(long address, Object privateData, boolean isArray);

    /** Calls the release callback of the {@code ArrowArray} (or {@code ArrowSchema}) at this address. */
    public static native void arrowRelease(long address, boolean isArray);

    /**
     * Asks the C library to give freed heap memory back to the operating system: 1 when some was,
     * 0 when none could be, -1 when this C library cannot (not glibc) and nothing was done.
     */
    static native int mallocTrim();

    /** Panics in Rust with this message; exists so tests can show a panic becomes an exception. */
    static native void panicForTesting(byte[] message);
}
