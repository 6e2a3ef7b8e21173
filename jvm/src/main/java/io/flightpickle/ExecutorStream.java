package io.flightpickle;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import org.apache.arrow.c.ArrowArray;
import org.apache.arrow.c.ArrowSchema;
import org.apache.arrow.c.Data;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.types.pojo.Schema;

/**
 * One stream to the flightpickle executor service (protocol: {@code src/transport/PROTOCOL.md}):
 * a sealed function applied to a task's record batches.
 *
 * <p>Batches cross into Rust and back through the Arrow C Data Interface, without copies. A pushed
 * {@link VectorSchemaRoot} is exported into structs that Rust takes over; its buffers are back with
 * this side (their reference counts dropped) when {@link #push} returns, so the caller may reuse
 * the root at once. A pulled root wraps memory that Rust allocated; closing it releases that
 * memory in Rust. Every struct is allocated from, and every pulled root imported into, the
 * allocator the stream was opened with, which therefore reports any leak when it is closed.
 *
 * <p>Not thread-safe: one task thread uses a stream; only {@link #cancel} may come from another.
 * Errors (the function raised, with its Python traceback; the worker died; a deadline passed; the
 * stream was cancelled) come out as {@link NativeException}s whose {@link NativeException#kind()}
 * is the protocol's status name or {@code worker_lost}, {@code timeout}, {@code io},
 * {@code cancelled}, {@code unauthenticated} (a remote pool refused the token).
 */
public final class ExecutorStream implements AutoCloseable {

    /** The protocol's evaluation kinds, with their bytes. */
    public enum Kind {
        SCALAR_ROW(1),
        SCALAR_PANDAS(2),
        MAP_ARROW(3),
        MAP_PANDAS(4),
        GROUPED_MAP_PANDAS(5),
        SCALAR_PANDAS_ITER(6),
        GROUPED_AGG_PANDAS(7),
        GROUPED_MAP_ARROW(8),
        GROUPED_MAP_ARROW_ITER(9);

        final int code;

        Kind(int code) {
            this.code = code;
        }
    }

    /**
     * A stream's sealed function: its frame, or the broadcast file of a command too large for tasks,
     * which the native side reads only if the service asks for the function (once per service
     * worker, since workers keep functions by digest).
     */
    public record Body(byte[] envelope, Path broadcastFile) {
        public static Body of(byte[] envelope) {
            return new Body(java.util.Objects.requireNonNull(envelope, "envelope"), null);
        }

        public static Body inBroadcastFile(Path file) {
            return new Body(null, java.util.Objects.requireNonNull(file, "file"));
        }

        private byte[] fileBytes() {
            return broadcastFile == null ? null : broadcastFile.toString().getBytes(StandardCharsets.UTF_8);
        }
    }

    /**
     * Where the service listens: a Unix socket of this host, or a remote pool's {@code grpc://host:port}
     * or {@code grpc+tls://host:port} with its bearer token and the CA certificates (PEM) of its TLS,
     * either null. The string form never shows the token.
     */
    public static final class Endpoint {
        private final String address;
        private final byte[] token;
        private final byte[] tlsCa;

        private Endpoint(String address, byte[] token, byte[] tlsCa) {
            this.address = java.util.Objects.requireNonNull(address, "address");
            this.token = token;
            this.tlsCa = tlsCa;
        }

        public static Endpoint unix(Path socket) {
            return new Endpoint(socket.toString(), null, null);
        }

        public static Endpoint remote(String uri, byte[] token, byte[] tlsCa) {
            return new Endpoint(uri, token, tlsCa);
        }

        @Override
        public String toString() {
            return address + (token == null ? "" : " (with a bearer token)");
        }
    }

    /** How a stream is opened, apart from the function and the schemas. */
    public record Options(int window, Duration timeout, long bodyLimit) {}

    /**
     * What the service measured serving a stream.
     *
     * @param functionNanos time the service's worker spent in the function (calling it and
     *     converting its data), not waiting for this side
     * @param functionCached whether the worker had the function by its digest, rather than
     *     opening it from the body
     */
    public record Stats(long functionNanos, boolean functionCached) {}

    private final BufferAllocator allocator;
    /** Zero once closed; volatile because {@link #cancel} reads it from another thread. */
    private volatile long handle;

    private ExecutorStream(BufferAllocator allocator, long handle) {
        this.allocator = allocator;
        this.handle = handle;
    }

    /** {@link #open(Endpoint, Kind, Body, String, Schema, Schema, Options, BufferAllocator)} on a Unix socket. */
    public static ExecutorStream open(Path socket, Kind kind, Body body, String digest, Schema input,
            Schema output, Options options, BufferAllocator allocator) {
        return open(Endpoint.unix(socket), kind, body, digest, input, output, options, allocator);
    }

    /**
     * Connects to the service at {@code endpoint} and opens a stream: the service gets the function
     * by its digest, or from {@code body} when it has not opened it yet.
     *
     * @throws NativeException if the service cannot be reached or refuses the stream (kind
     *     {@code unauthenticated} when a remote pool refuses the token), or the body it asked for
     *     cannot be read
     */
    public static ExecutorStream open(Endpoint endpoint, Kind kind, Body body, String digest, Schema input,
            Schema output, Options options, BufferAllocator allocator) {
        return open(endpoint, kind, body, digest, java.util.List.of(), input, output, options, allocator);
    }

    /**
     * As {@link #open(Endpoint, Kind, Body, String, Schema, Schema, Options, BufferAllocator)}, for a
     * grouped kind: {@code groupKeys} names the input columns that hold each group's key.
     *
     * @throws IllegalArgumentException if a key name holds a NUL character
     */
    public static ExecutorStream open(Endpoint endpoint, Kind kind, Body body, String digest,
            java.util.List<String> groupKeys, Schema input, Schema output, Options options,
            BufferAllocator allocator) {
        byte[] keys = joinedKeys(groupKeys);
        NativeLibrary.load();
        try (ArrowSchema inputStruct = ArrowSchema.allocateNew(allocator);
                ArrowSchema outputStruct = ArrowSchema.allocateNew(allocator)) {
            Data.exportSchema(allocator, input, null, inputStruct);
            Data.exportSchema(allocator, output, null, outputStruct);
            try {
                long handle = Native.streamOpen(endpoint.address.getBytes(StandardCharsets.UTF_8), endpoint.token,
                        endpoint.tlsCa, kind.code, body.envelope(), body.fileBytes(),
                        digest.getBytes(StandardCharsets.UTF_8), keys, inputStruct.memoryAddress(),
                        outputStruct.memoryAddress(), options.window(), options.timeout().toMillis(),
                        options.bodyLimit());
                return new ExecutorStream(allocator, handle);
            } finally {
                // Taken over on success (then these do nothing); released here on failure.
                inputStruct.release();
                outputStruct.release();
            }
        }
    }

    /** The names, each in UTF-8 followed by a NUL byte, as the native side reads them. */
    private static byte[] joinedKeys(java.util.List<String> groupKeys) {
        java.io.ByteArrayOutputStream joined = new java.io.ByteArrayOutputStream();
        for (String key : groupKeys) {
            if (key.indexOf('\0') >= 0) {
                throw new IllegalArgumentException("a group key name holds a NUL character: " + key);
            }
            joined.writeBytes(key.getBytes(StandardCharsets.UTF_8));
            joined.write(0);
        }
        return joined.toByteArray();
    }

    /**
     * What the service measured, once the final status arrived (after {@link #pull} returned null,
     * or failed with the service's status); empty before, or from a service that sends none.
     */
    public java.util.Optional<Stats> stats() {
        return NativeEntries.read(Native.streamStats(openHandle())).streamStats();
    }

    /** Sends one input batch, waiting while the service is a window of batches behind. */
    public void push(VectorSchemaRoot batch) {
        try (ArrowArray array = ArrowArray.allocateNew(allocator);
                ArrowSchema schema = ArrowSchema.allocateNew(allocator)) {
            Data.exportVectorSchemaRoot(allocator, batch, null, array, schema);
            try {
                Native.streamPush(openHandle(), array.memoryAddress(), schema.memoryAddress());
            } finally {
                array.release();
                schema.release();
            }
        }
    }

    /** Tells the service the input is complete; results can still be pulled. */
    public void finish() {
        Native.streamFinish(openHandle());
    }

    /**
     * The next result batch, owned by the caller (close it); null at the end of the results when
     * {@code wait}, or when none has arrived yet when not. A batch Arrow Java cannot import fails
     * with Arrow's exception, its memory handed back to Rust.
     */
    public VectorSchemaRoot pull(boolean wait) {
        try (ArrowArray array = ArrowArray.allocateNew(allocator);
                ArrowSchema schema = ArrowSchema.allocateNew(allocator)) {
            if (!Native.streamPull(openHandle(), array.memoryAddress(), schema.memoryAddress(), wait)) {
                return null;
            }
            return PulledBatch.take(allocator, array, schema);
        }
    }

    /**
     * Ends the stream from another thread (a killed task's watcher) while its owner may be blocked
     * in {@link #push} or {@link #pull}: those fail at once with kind {@code cancelled}. Does
     * nothing once the stream is closed.
     */
    public synchronized void cancel() {
        if (handle != 0) {
            Native.streamCancel(handle);
        }
    }

    /** Closes the connection (the service drops an unfinished stream); idempotent. */
    @Override
    public synchronized void close() {
        if (handle != 0) {
            long closing = handle;
            handle = 0;
            Native.streamClose(closing);
        }
    }

    private long openHandle() {
        if (handle == 0) {
            throw new IllegalStateException("the executor stream is closed");
        }
        return handle;
    }
}
