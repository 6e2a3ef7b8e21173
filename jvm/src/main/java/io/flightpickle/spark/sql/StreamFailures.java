package io.flightpickle.spark.sql;

import io.flightpickle.NativeException;
import io.flightpickle.spark.FlightPickleConf;

/** Task failures for failed executor streams, with messages that say where to look. */
final class StreamFailures {

    private StreamFailures() {}

    /** The exception a task fails with; a Python error keeps the function's traceback. */
    static RuntimeException forTask(NativeException failure) {
        String message = switch (failure.kind()) {
            case "udf_error" -> "a Python UDF failed in the flightpickle executor service: " + failure.getMessage();
            case "worker_lost" -> "the flightpickle executor service lost the Python worker running this task"
                    + " (it is replaced; the task may be retried): " + failure.getMessage();
            case "cancelled" -> "the flightpickle executor stream of this task was cancelled: " + failure.getMessage();
            case "unauthenticated" -> "the flightpickle executor pool refused this executor's token (set "
                    + FlightPickleConf.EXECUTOR_TOKEN_FILE + ", or " + FlightPickleConf.TOKEN_VARIABLE
                    + " on the executors, to the pool's token): " + failure.getMessage();
            default -> "the flightpickle executor stream failed: " + failure.getMessage();
        };
        return new RuntimeException(message, failure);
    }
}
