package io.flightpickle.spark;

import com.codahale.metrics.Counter;
import com.codahale.metrics.Gauge;
import com.codahale.metrics.MetricRegistry;

/**
 * The executor side's metrics, under {@code plugin.io.flightpickle.spark.FlightPicklePlugin.*} in
 * each executor's metrics system: that the native core is loaded (and how long that took), the
 * executor's tasks as the plugin saw them, its Python workers' cache of opened commands, and the
 * trims of its native heap ({@link MemoryTrimmer}) with the resident bytes they gave back.
 */
final class ExecutorMetrics {

    final Counter tasksStarted = new Counter();
    final Counter tasksSucceeded = new Counter();
    final Counter tasksFailed = new Counter();
    final Counter memoryTrims = new Counter();
    final Counter memoryTrimmedBytes = new Counter();

    void registerIn(MetricRegistry registry, long nativeLoadMillis, WorkerCacheReports workerReports) {
        registry.register("nativeCore.loaded", (Gauge<Integer>) () -> 1);
        registry.register("nativeCore.loadMillis", (Gauge<Long>) () -> nativeLoadMillis);
        registry.register("tasks.started", tasksStarted);
        registry.register("tasks.succeeded", tasksSucceeded);
        registry.register("tasks.failed", tasksFailed);
        registry.register("pythonWorkers.cacheHits", (Gauge<Long>) workerReports::hits);
        registry.register("pythonWorkers.cacheMisses", (Gauge<Long>) workerReports::misses);
        registry.register("memoryTrim.count", memoryTrims);
        registry.register("memoryTrim.returnedBytes", memoryTrimmedBytes);
    }
}
