package io.flightpickle.spark;

import io.flightpickle.BuildInfo;
import io.flightpickle.NativeCore;
import java.util.Map;
import org.apache.spark.SparkContext;
import org.apache.spark.api.plugin.DriverPlugin;
import org.apache.spark.api.plugin.PluginContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The driver side: loads the native core and collects what the executors report. */
final class FlightPickleDriverPlugin implements DriverPlugin {

    private static final Logger LOG = LoggerFactory.getLogger(FlightPickleDriverPlugin.class);

    private final ExecutorReports reports;

    FlightPickleDriverPlugin(ExecutorReports reports) {
        this.reports = reports;
    }

    @Override
    public Map<String, String> init(SparkContext sparkContext, PluginContext context) {
        String coreVersion = NativeCore.loadMatchingVersion();
        // A previous SparkContext in this JVM that never shut its plugins down must not leave
        // its executors behind in this one's reports.
        reports.clear();
        LOG.info("flightpickle {}: native core {} loaded in the driver", BuildInfo.version(), coreVersion);
        return Map.of();
    }

    /**
     * Answers an executor's message. Spark turns an exception thrown here into a failed reply
     * to the sender, so rejecting a message cannot harm the driver.
     */
    @Override
    public Object receive(Object message) {
        if (message instanceof NativeCoreReport report) {
            return record(report);
        }
        String type = message == null ? "null" : message.getClass().getName();
        LOG.warn("flightpickle: ignoring a message of unknown type {} from an executor", type);
        throw new IllegalArgumentException("the flightpickle " + BuildInfo.version()
                + " driver plugin does not understand messages of type " + type
                + "; do the driver and the executors use the same flightpickle jar?");
    }

    private String record(NativeCoreReport report) {
        reports.record(report);
        LOG.info("flightpickle: executor {} loaded native core {} (pid {})",
                report.executorId(), report.coreVersion(), report.pid());
        if (!report.coreVersion().equals(BuildInfo.version())) {
            LOG.warn("flightpickle: executor {} runs native core {} but the driver runs {}",
                    report.executorId(), report.coreVersion(), BuildInfo.version());
        }
        return "recorded executor " + report.executorId();
    }

    @Override
    public void shutdown() {
        reports.clear();
    }
}
