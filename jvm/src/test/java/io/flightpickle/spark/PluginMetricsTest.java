package io.flightpickle.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.codahale.metrics.Counter;
import com.codahale.metrics.Gauge;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.apache.spark.api.plugin.DriverPlugin;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.junit.jupiter.api.Test;

/** The names and values the plugins put in Spark's metric registries. */
class PluginMetricsTest {

    private final FlightPicklePlugin plugin = new FlightPicklePlugin();

    @Test
    void theDriverRegistersTheCommandMetricsThatTheCheckUpdates() {
        DriverPlugin driver = plugin.driverPlugin();
        driver.init(null, null);
        try {
            FakePluginContext context = new FakePluginContext("driver", driver);
            driver.registerMetrics("app-1", context);
            assertEquals(new TreeSet<>(List.of("commands.checked", "commands.payloadBytes", "commands.refused",
                    "commands.seen", "commands.verifyTime", "nativeCore.loaded")), context.metrics.getNames());
            assertEquals(1, ((Gauge<?>) context.metrics.getGauges().get("nativeCore.loaded")).getValue());

            DriverState.current().check.refusal("f", new byte[] {1, 2, 3});
            Map<String, Counter> counters = context.metrics.getCounters();
            assertEquals(1, counters.get("commands.seen").getCount());
            assertEquals(3, counters.get("commands.payloadBytes").getCount());
            assertEquals(0, counters.get("commands.refused").getCount()); // no policy by default
        } finally {
            driver.shutdown();
        }
    }

    @Test
    void anExecutorRegistersItsMetricsAndCountsItsTasks() {
        DriverPlugin driver = plugin.driverPlugin();
        driver.init(null, null);
        try {
            FakePluginContext context = new FakePluginContext("4", driver);
            ExecutorPlugin executor = plugin.executorPlugin();
            executor.init(context, Map.of());
            assertEquals(new TreeSet<>(List.of("memoryTrim.count", "memoryTrim.returnedBytes",
                    "nativeCore.loadMillis", "nativeCore.loaded", "pythonWorkers.cacheHits", "pythonWorkers.cacheMisses", "tasks.failed", "tasks.started",
                    "tasks.succeeded")), context.metrics.getNames());
            executor.onTaskStart();
            executor.onTaskSucceeded();
            executor.onTaskStart();
            executor.onTaskFailed(null);
            assertEquals(2, context.metrics.getCounters().get("tasks.started").getCount());
            assertEquals(1, context.metrics.getCounters().get("tasks.succeeded").getCount());
            assertEquals(1, context.metrics.getCounters().get("tasks.failed").getCount());
        } finally {
            driver.shutdown();
        }
    }
}
