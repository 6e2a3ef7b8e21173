package io.flightpickle.spark.sql;

import io.flightpickle.CommandInspector;
import io.flightpickle.Envelope;
import io.flightpickle.ExecutorStream;
import io.flightpickle.NativeException;
import java.io.Serializable;
import java.util.Optional;

/**
 * A Python UDF as the executor service takes it: the sealed frame inside its command, the
 * frame's digest and the evaluation kind.
 *
 * <p>flightpickle's driver hook turns each of PySpark's commands, {@code (func, returnType)}, into a
 * small pickle that calls {@code load_sealed} on a sealed frame of that pair. The operator sends the
 * frame as the stream's function, and the service takes the pair's function (see
 * {@code flightpickle/executor/spark_commands.py}).
 */
record StreamedFunction(ExecutorStream.Kind kind, byte[] envelope, String digest) implements Serializable {

    /** The UDF's function, or why the service cannot take it (a reason for the log). */
    static Result of(byte[] command, ExecutorStream.Kind kind) {
        try {
            Optional<byte[]> frame = CommandInspector.sealedFrame(command);
            if (frame.isEmpty()) {
                return Result.fallback("its command is not a sealed flightpickle command: flightpickle is not"
                        + " enabled on the driver, spark.flightpickle.target is pyspark, or the command is over"
                        + " spark.broadcast.UDFCompressionThreshold and travels as a broadcast");
            }
            String digest = Envelope.read(frame.get()).digest();
            return new Result(Optional.of(new StreamedFunction(kind, frame.get(), digest)), "");
        } catch (NativeException unreadable) {
            return Result.fallback("its command cannot be read: " + unreadable.getMessage());
        }
    }

    /** A function, or the reason there is none. */
    record Result(Optional<StreamedFunction> function, String reason) {
        static Result fallback(String reason) {
            return new Result(Optional.empty(), reason);
        }
    }
}
