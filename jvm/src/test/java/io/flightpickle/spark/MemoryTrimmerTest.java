package io.flightpickle.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.codahale.metrics.Counter;
import io.flightpickle.NativeCore;
import io.flightpickle.NativeMemory;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.apache.spark.api.plugin.DriverPlugin;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.junit.jupiter.api.Test;

/** The executor's native heap trims: the JNI entry, the thread that calls it, and its stopping. */
class MemoryTrimmerTest {

    private static final Duration OFTEN = Duration.ofMillis(20);
    private static final long PATIENCE_MILLIS = 30_000;

    @Test
    void theNativeTrimRunsOnThisGlibcMachine() {
        NativeCore.loadMatchingVersion();
        byte[][] garbage = new byte[64][];
        for (int i = 0; i < garbage.length; i++) {
            garbage[i] = new byte[1 << 20];
        }
        assertNotEquals(NativeMemory.Trim.UNSUPPORTED, NativeMemory.returnFreedMemory());
        assertTrue(MemoryTrimmer.residentBytes() > 0);
    }

    @Test
    void unboundedArenasGetAdviceNamingTheEnvironmentVariable() {
        String advice = MemoryTrimmer.arenaAdvice(Map.of("PATH", "/usr/bin")).orElseThrow();
        assertTrue(advice.contains("spark.executorEnv.MALLOC_ARENA_MAX="), advice);
        assertTrue(MemoryTrimmer.arenaAdvice(Map.of("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0")).isPresent());
    }

    @Test
    void arenasBoundEitherWayGetNoAdvice() {
        assertTrue(MemoryTrimmer.arenaAdvice(Map.of("MALLOC_ARENA_MAX", "2")).isEmpty());
        assertTrue(MemoryTrimmer.arenaAdvice(
                Map.of("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=0:glibc.malloc.arena_max=4")).isEmpty());
    }

    @Test
    void theThreadTrimsUntilClosedAndThenStops() throws InterruptedException {
        NativeCore.loadMatchingVersion();
        ExecutorMetrics metrics = new ExecutorMetrics();
        MemoryTrimmer trimmer = MemoryTrimmer.start(OFTEN, metrics);
        try {
            waitFor(() -> metrics.memoryTrims.getCount() >= 3);
        } finally {
            trimmer.close();
        }
        assertTrue(trimmer.isStopped());
        long trims = metrics.memoryTrims.getCount();
        Thread.sleep(10 * OFTEN.toMillis());
        assertEquals(trims, metrics.memoryTrims.getCount());
    }

    @Test
    void whereTrimmingCannotWorkTheThreadStopsAfterOneTry() {
        AtomicInteger calls = new AtomicInteger();
        ExecutorMetrics metrics = new ExecutorMetrics();
        MemoryTrimmer unsupported = MemoryTrimmer.start(OFTEN, () -> {
            calls.incrementAndGet();
            return NativeMemory.Trim.UNSUPPORTED;
        }, metrics);
        waitFor(unsupported::isStopped);
        assertEquals(1, calls.get());
        assertEquals(0, metrics.memoryTrims.getCount());

        MemoryTrimmer failing = MemoryTrimmer.start(OFTEN, () -> {
            calls.incrementAndGet();
            throw new IllegalStateException("the library failed");
        }, metrics);
        waitFor(failing::isStopped);
        assertEquals(2, calls.get());
    }

    @Test
    void anIntervalMustBePositive() {
        ExecutorMetrics metrics = new ExecutorMetrics();
        assertThrows(IllegalArgumentException.class, () -> MemoryTrimmer.start(Duration.ZERO, metrics));
        assertThrows(IllegalArgumentException.class, () -> MemoryTrimmer.start(Duration.ofSeconds(-1), metrics));
    }

    @Test
    void anExecutorPluginStreamingThroughFlightpickleTrimsUntilItsShutdown() throws InterruptedException {
        FlightPicklePlugin plugin = new FlightPicklePlugin();
        DriverPlugin driver = plugin.driverPlugin();
        driver.init(null, null);
        try {
            FakePluginContext context = new FakePluginContext("7", driver);
            ExecutorPlugin executor = plugin.executorPlugin();
            executor.init(context, Map.of("spark.flightpickle.transport", "remote",
                    "spark.flightpickle.executor.uri", "grpc://127.0.0.1:9",
                    "spark.flightpickle.executor.memoryTrimInterval", "20ms"));
            Counter trims = context.metrics.getCounters().get("memoryTrim.count");
            try {
                waitFor(() -> trims.getCount() >= 2);
            } finally {
                executor.shutdown();
            }
            long afterShutdown = trims.getCount();
            Thread.sleep(10 * OFTEN.toMillis());
            assertEquals(afterShutdown, trims.getCount());
        } finally {
            driver.shutdown();
        }
    }

    /** Polls until the condition holds; fails the test rather than hanging. */
    private static void waitFor(BooleanSupplier condition) {
        long deadline = System.nanoTime() + PATIENCE_MILLIS * 1_000_000;
        while (!condition.getAsBoolean()) {
            assertTrue(System.nanoTime() < deadline, "gave up waiting after " + PATIENCE_MILLIS + " ms");
            try {
                Thread.sleep(5);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError("interrupted while waiting", e);
            }
        }
    }
}
