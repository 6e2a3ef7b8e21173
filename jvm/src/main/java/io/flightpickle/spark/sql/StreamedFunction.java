package io.flightpickle.spark.sql;

import io.flightpickle.CommandInspector;
import io.flightpickle.Envelope;
import io.flightpickle.EnvelopeHeader;
import io.flightpickle.ExecutorStream;
import io.flightpickle.NativeException;
import java.io.Serializable;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.apache.spark.api.python.PythonBroadcast;
import org.apache.spark.broadcast.Broadcast;

/**
 * A Python UDF as the executor service takes it: the evaluation kind, the digest of the sealed
 * frame inside its command, and the frame itself, or the broadcast that holds it.
 *
 * <p>flightpickle's driver hook turns each of PySpark's commands, {@code (func, returnType)}, into a
 * small pickle that calls {@code load_sealed} on a sealed frame of that pair. The operator sends the
 * frame as the stream's function, and the service takes the pair's function (see
 * {@code flightpickle/executor/spark_commands.py}).
 *
 * <p>A command over {@code spark.broadcast.UDFCompressionThreshold} (a UDF that captures a large
 * model) travels as a broadcast: the command in the plan only names it. Then only the broadcast and
 * the digest are kept here, so tasks carry a few bytes instead of the model; each task sends the
 * digest, and the executor reads the frame from the broadcast's local file only when the service
 * asks for it, which it does once per worker.
 */
record StreamedFunction(ExecutorStream.Kind kind, byte[] envelope, Broadcast<PythonBroadcast> broadcast,
        String digest) implements Serializable {

    /** The pickled reference to a broadcast that PySpark puts in place of a large command. */
    private static final String BROADCAST_REFERENCE = "pyspark.core.broadcast._from_id";
    /** Digests (or why there is none) of large commands by broadcast id: rules run many times per query. */
    private static final Map<Long, BroadcastDigest> BROADCAST_DIGESTS = new LinkedHashMap<>() {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Long, BroadcastDigest> eldest) {
            return size() > 256;
        }
    };

    /**
     * The UDF's function, or why the service cannot take it (a reason for the log).
     *
     * @param broadcasts the broadcasts the command refers to (PySpark's {@code broadcastVars})
     */
    static Result of(byte[] command, List<Broadcast<PythonBroadcast>> broadcasts, ExecutorStream.Kind kind) {
        try {
            Optional<byte[]> frame = CommandInspector.sealedFrame(command);
            if (frame.isPresent()) {
                String digest = Envelope.read(frame.get()).digest();
                return Result.of(new StreamedFunction(kind, frame.get(), null, digest));
            }
            if (isBroadcastReference(command, broadcasts)) {
                return inBroadcast(broadcasts.get(0), kind);
            }
            return Result.fallback("its command is not a sealed flightpickle command: flightpickle is not"
                    + " enabled on the driver, or spark.flightpickle.target is pyspark");
        } catch (NativeException unreadable) {
            return Result.fallback("its command cannot be read: " + unreadable.getMessage());
        }
    }

    /** The frame as a stream's body, on the executor. */
    ExecutorStream.Body body() {
        return envelope != null ? ExecutorStream.Body.of(envelope)
                : ExecutorStream.Body.inBroadcastFile(SparkShim.broadcastFile(broadcast));
    }

    /**
     * A command that only loads its one broadcast: a large command. A UDF that captures broadcasts
     * of its own has more than one, and the service cannot give it their values.
     */
    private static boolean isBroadcastReference(byte[] command, List<Broadcast<PythonBroadcast>> broadcasts) {
        return broadcasts.size() == 1
                && CommandInspector.inspect(command, null, false).imports().calls().equals(
                        java.util.Set.of(BROADCAST_REFERENCE));
    }

    private static Result inBroadcast(Broadcast<PythonBroadcast> broadcast, ExecutorStream.Kind kind) {
        Optional<String> unreadable = SparkShim.unreadableBroadcastFiles();
        if (unreadable.isPresent()) {
            return Result.fallback("its command travels as a broadcast and " + unreadable.get());
        }
        BroadcastDigest known;
        synchronized (BROADCAST_DIGESTS) {
            known = BROADCAST_DIGESTS.computeIfAbsent(broadcast.id(), id -> BroadcastDigest.read(broadcast));
        }
        return known.digest()
                .map(digest -> Result.of(new StreamedFunction(kind, null, broadcast, digest)))
                .orElseGet(() -> Result.fallback(known.reason()));
    }

    /** The digest of the sealed frame in a broadcast, or why it has none. */
    private record BroadcastDigest(Optional<String> digest, String reason) {
        /** Reads the driver's copy of the broadcast once; the frame stays in the file. */
        static BroadcastDigest read(Broadcast<PythonBroadcast> broadcast) {
            try {
                EnvelopeHeader header = CommandInspector.broadcastCommandHeader(SparkShim.broadcastFile(broadcast));
                return new BroadcastDigest(Optional.of(header.digest()), "");
            } catch (NativeException notSealed) {
                return new BroadcastDigest(Optional.empty(), "its command travels as a broadcast that holds no"
                        + " sealed flightpickle command: " + notSealed.getMessage());
            }
        }
    }

    /** A function, or the reason there is none. */
    record Result(Optional<StreamedFunction> function, String reason) {
        static Result of(StreamedFunction function) {
            return new Result(Optional.of(function), "");
        }

        static Result fallback(String reason) {
            return new Result(Optional.empty(), reason);
        }
    }
}
