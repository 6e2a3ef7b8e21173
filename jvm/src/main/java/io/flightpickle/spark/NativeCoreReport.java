package io.flightpickle.spark;

import java.io.Serializable;
import java.util.Objects;

/**
 * Sent by each executor to the driver once it has loaded the native core. Spark carries plugin
 * messages with Java serialization, hence {@link Serializable}.
 *
 * @param executorId Spark's id of the executor
 * @param coreVersion the version the loaded native library reports
 * @param pid the executor JVM's process id, to tell the executors' native libraries apart
 */
public record NativeCoreReport(String executorId, String coreVersion, long pid) implements Serializable {

    public NativeCoreReport {
        Objects.requireNonNull(executorId, "executorId");
        Objects.requireNonNull(coreVersion, "coreVersion");
    }

    /** A short human-readable form, without the executor id. */
    public String describe() {
        return "core " + coreVersion + ", pid " + pid;
    }
}
