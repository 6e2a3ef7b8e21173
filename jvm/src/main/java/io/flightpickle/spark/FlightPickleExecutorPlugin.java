package io.flightpickle.spark;

import io.flightpickle.BuildInfo;
import io.flightpickle.NativeCore;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.Map;
import org.apache.spark.TaskFailedReason;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.apache.spark.api.plugin.PluginContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The executor side: loads the native core before the executor runs any task, counts tasks, and
 * with {@code spark.flightpickle.transport=local} runs the executor service tasks stream to, or
 * with {@code remote} reads the credentials they present to the remote pool (and starts nothing).
 * With either, it also trims the executor's native heap now and then ({@link MemoryTrimmer}).
 */
final class FlightPickleExecutorPlugin implements ExecutorPlugin {

    private static final Logger LOG = LoggerFactory.getLogger(FlightPickleExecutorPlugin.class);

    private final ExecutorMetrics metrics = new ExecutorMetrics();
    private LocalExecutorService service;
    private MemoryTrimmer trimmer;

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
        FlightPickleConf conf = FlightPickleConf.from(extraConf);
        service = startService(context, conf);
        if (conf.trimsExecutorMemory()) {
            trimmer = MemoryTrimmer.start(conf.memoryTrimInterval(), metrics);
            LOG.info("flightpickle: giving freed native memory back to the OS every {} ({})",
                    conf.memoryTrimInterval(), FlightPickleConf.MEMORY_TRIM_INTERVAL);
            MemoryTrimmer.arenaAdvice(System.getenv()).ifPresent(LOG::info);
        }
    }

    /**
     * With {@code spark.flightpickle.transport=local}, the service tasks stream to: one started
     * here (a failure to start fails the executor's start, as for the core), or the one
     * {@code spark.flightpickle.executor.uri} names. The confs come validated from the driver.
     */
    private static LocalExecutorService startService(PluginContext context, FlightPickleConf conf) {
        if (conf.streamsToRemotePool()) {
            RemoteExecutorPool.configure(conf, System.getenv());
            LOG.info("flightpickle: tasks stream to the remote pool at {}", conf.executorUri().orElseThrow());
            return null;
        }
        if (!conf.replacesPythonOperators()) {
            return null;
        }
        if (conf.executorUri().isPresent()) {
            LocalExecutorService.useExisting(conf.executorUri().get());
            return null;
        }
        int workers = conf.executorWorkers().orElse(context.conf().getInt("spark.executor.cores", 1));
        try {
            return LocalExecutorService.start(
                    pythonForWorkers(context), workers, cancelGraceSeconds(context), Path.of("").toAbsolutePath());
        } catch (IOException e) {
            throw new UncheckedIOException("flightpickle: cannot start the executor service", e);
        }
    }

    /**
     * How long a killed task's function may run on: Spark gives its own Python workers
     * {@code spark.python.task.killTimeout} (2 s by default) before it kills them.
     */
    private static double cancelGraceSeconds(PluginContext context) {
        String key = "spark.python.task.killTimeout";
        try {
            return Math.max(0, context.conf().getTimeAsMs(key, "2s")) / 1000.0;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(
                    key + " is not a duration (" + context.conf().get(key) + "): give it as 2s or 500ms, say", e);
        }
    }

    /** The Python that Spark starts its workers with (PySpark's own order of preference). */
    static String pythonForWorkers(PluginContext context) {
        String configured = context.conf().get("spark.pyspark.python", null);
        if (configured != null) {
            return configured;
        }
        String fromEnvironment = System.getenv("PYSPARK_PYTHON");
        return fromEnvironment != null ? fromEnvironment : "python3";
    }

    @Override
    public void shutdown() {
        if (trimmer != null) {
            trimmer.close();
        }
        if (service != null) {
            service.close();
        }
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
