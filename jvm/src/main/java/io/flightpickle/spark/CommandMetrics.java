package io.flightpickle.spark;

import com.codahale.metrics.Counter;
import com.codahale.metrics.MetricRegistry;
import com.codahale.metrics.Timer;

/**
 * What the driver's command check has seen, as Dropwizard metrics. Spark publishes them under
 * {@code plugin.io.flightpickle.spark.FlightPicklePlugin.*} to its metrics sinks and REST API.
 */
final class CommandMetrics {

    /** Distinct UDF commands analysed (the same command in many queries counts once). */
    final Counter seen = new Counter();
    /** Times a UDF command was looked at by the check rule, repeats included. */
    final Counter checked = new Counter();
    /** Bytes of the distinct commands seen. */
    final Counter payloadBytes = new Counter();
    /** Commands refused by the policy. */
    final Counter refused = new Counter();
    /** Time the native core took to verify and inspect a command. */
    final Timer verifyTime = new Timer();

    void registerIn(MetricRegistry registry) {
        registry.register("commands.seen", seen);
        registry.register("commands.checked", checked);
        registry.register("commands.payloadBytes", payloadBytes);
        registry.register("commands.refused", refused);
        registry.register("commands.verifyTime", verifyTime);
    }
}
