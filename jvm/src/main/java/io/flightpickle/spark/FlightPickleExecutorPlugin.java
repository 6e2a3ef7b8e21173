package io.flightpickle.spark;

import io.flightpickle.BuildInfo;
import io.flightpickle.NativeCore;
import java.util.Map;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.apache.spark.api.plugin.PluginContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The executor side: loads the native core before the executor runs any task. */
final class FlightPickleExecutorPlugin implements ExecutorPlugin {

    private static final Logger LOG = LoggerFactory.getLogger(FlightPickleExecutorPlugin.class);

    /**
     * Throws if the native core cannot be loaded or is of another version, which makes Spark
     * fail the executor's start: better than failing tasks later in ways that hide the cause.
     */
    @Override
    public void init(PluginContext context, Map<String, String> extraConf) {
        String coreVersion = NativeCore.loadMatchingVersion();
        NativeCoreReport report = new NativeCoreReport(
                context.executorID(), coreVersion, ProcessHandle.current().pid());
        LOG.info("flightpickle {}: native core {} loaded in executor {} (pid {})",
                BuildInfo.version(), coreVersion, report.executorId(), report.pid());
        reportToDriver(context, report);
    }

    // The report only informs; an executor whose core loaded fine stays useful without it.
    private static void reportToDriver(PluginContext context, NativeCoreReport report) {
        try {
            context.ask(report);
        } catch (Exception e) {
            LOG.warn("flightpickle: executor {} could not report its native core to the driver",
                    report.executorId(), e);
        }
    }
}
