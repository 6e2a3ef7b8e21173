package io.flightpickle.spark;

import io.flightpickle.BuildInfo;
import io.flightpickle.NativeCore;
import java.util.Map;
import org.apache.spark.TaskFailedReason;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.apache.spark.api.plugin.PluginContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The executor side: loads the native core before the executor runs any task, and counts tasks. */
final class FlightPickleExecutorPlugin implements ExecutorPlugin {

    private static final Logger LOG = LoggerFactory.getLogger(FlightPickleExecutorPlugin.class);

    private final ExecutorMetrics metrics = new ExecutorMetrics();

    /**
     * Throws if the native core cannot be loaded or is of another version, which makes Spark
     * fail the executor's start: better than failing tasks later in ways that hide the cause.
     */
    @Override
    public void init(PluginContext context, Map<String, String> extraConf) {
        long started = System.nanoTime();
        String coreVersion = NativeCore.loadMatchingVersion();
        long loadMillis = (System.nanoTime() - started) / 1_000_000;
        metrics.registerIn(context.metricRegistry(), loadMillis, WorkerCacheReports.forThisExecutor());
        NativeCoreReport report = new NativeCoreReport(
                context.executorID(), coreVersion, ProcessHandle.current().pid());
        LOG.info("flightpickle {}: native core {} loaded in executor {} (pid {}) in {} ms",
                BuildInfo.version(), coreVersion, report.executorId(), report.pid(), loadMillis);
        reportToDriver(context, report);
    }

    @Override
    public void onTaskStart() {
        metrics.tasksStarted.inc();
    }

    @Override
    public void onTaskSucceeded() {
        metrics.tasksSucceeded.inc();
    }

    @Override
    public void onTaskFailed(TaskFailedReason failureReason) {
        metrics.tasksFailed.inc();
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
