package io.flightpickle.spark;

import com.codahale.metrics.Counter;
import io.flightpickle.NativeMemory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A daemon thread that, at a fixed interval, asks the C library to give the executor's freed
 * native memory back to the operating system. With flightpickle's operators the executor JVM
 * moves every Arrow batch through native memory; glibc keeps what was freed in its arenas, and
 * without this the executor's resident size grows over a long job although its use does not.
 */
final class MemoryTrimmer implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(MemoryTrimmer.class);
    private static final Path STATUS = Path.of("/proc/self/status");
    /** glibc's environment variable for the most malloc arenas it makes. */
    static final String ARENA_MAX = "MALLOC_ARENA_MAX";
    /** A trim holds malloc's locks for milliseconds; a close waits for one in progress, no longer. */
    private static final long CLOSE_WAIT_SECONDS = 10;

    private final ScheduledExecutorService thread;
    private final Supplier<NativeMemory.Trim> trim;
    private final ExecutorMetrics metrics;

    private MemoryTrimmer(Supplier<NativeMemory.Trim> trim, ExecutorMetrics metrics) {
        this.thread = Executors.newSingleThreadScheduledExecutor(runnable -> {
            Thread daemon = new Thread(runnable, "flightpickle-memory-trim");
            daemon.setDaemon(true);
            return daemon;
        });
        this.trim = trim;
        this.metrics = metrics;
    }

    /** Starts trimming with {@link NativeMemory#returnFreedMemory()}, first after one interval. */
    static MemoryTrimmer start(Duration interval, ExecutorMetrics metrics) {
        return start(interval, NativeMemory::returnFreedMemory, metrics);
    }

    static MemoryTrimmer start(Duration interval, Supplier<NativeMemory.Trim> trim, ExecutorMetrics metrics) {
        if (interval.isZero() || interval.isNegative()) {
            throw new IllegalArgumentException("a memory trim interval must be positive, not " + interval);
        }
        MemoryTrimmer trimmer = new MemoryTrimmer(trim, metrics);
        long millis = interval.toMillis();
        trimmer.thread.scheduleWithFixedDelay(trimmer::trimOnce, millis, millis, TimeUnit.MILLISECONDS);
        return trimmer;
    }

    /**
     * One trim, counted with the resident bytes it gave back. Stops the thread where trimming
     * cannot work (not glibc, or the library failed), saying so once, rather than retrying.
     */
    void trimOnce() {
        try {
            long before = residentBytes();
            NativeMemory.Trim outcome = trim.get();
            if (outcome == NativeMemory.Trim.UNSUPPORTED) {
                LOG.info("flightpickle: this C library cannot give freed memory back (not glibc); not trimming");
                thread.shutdown();
                return;
            }
            long after = residentBytes();
            metrics.memoryTrims.inc();
            if (before > 0 && after > 0 && after < before) {
                metrics.memoryTrimmedBytes.inc(before - after);
            }
        } catch (RuntimeException | LinkageError e) {
            LOG.warn("flightpickle: giving freed native memory back failed; not trimming any more", e);
            thread.shutdown();
        }
    }

    /** Whether the thread has stopped: closed, or given up. */
    boolean isStopped() {
        return thread.isTerminated();
    }

    /** Stops the thread, waiting a bounded time for a trim in progress. */
    @Override
    public void close() {
        thread.shutdownNow();
        try {
            if (!thread.awaitTermination(CLOSE_WAIT_SECONDS, TimeUnit.SECONDS)) {
                LOG.warn("flightpickle: the memory trim thread did not stop within {} s", CLOSE_WAIT_SECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Advice for an executor whose glibc arenas are not bounded, or empty. Trims give back what
     * the arenas keep at one moment; between trims each of glibc's arenas (8 per core by
     * default) refills to the most its threads used at once. Only the environment, read when the
     * process starts, bounds them all: {@code mallopt} from a plugin could at most stop new ones,
     * and glibc never retires those the JVM's threads made before.
     */
    static Optional<String> arenaAdvice(Map<String, String> environment) {
        if (boundsArenas(environment)) {
            return Optional.empty();
        }
        return Optional.of("flightpickle: glibc's malloc arenas are not bounded in this executor, so its resident"
                + " size can grow with freed Arrow buffers; unless " + FlightPickleConf.EXECUTOR_MALLOC_ARENA_MAX
                + "=0 was meant, set spark.executorEnv." + ARENA_MAX + "=2 (jvm/README.md, \"Executor memory\")");
    }

    /** Whether a process started with {@code environment} has its malloc arenas bounded. */
    static boolean boundsArenas(Map<String, String> environment) {
        String tunables = environment.getOrDefault("GLIBC_TUNABLES", "");
        return environment.containsKey(ARENA_MAX) || tunables.contains("glibc.malloc.arena_max=");
    }

    /** This process's resident set size in bytes, from /proc; -1 where that cannot be read. */
    static long residentBytes() {
        try {
            for (String line : Files.readAllLines(STATUS)) {
                if (line.startsWith("VmRSS:")) {
                    return Long.parseLong(line.substring(6).replace("kB", "").trim()) * 1024;
                }
            }
        } catch (IOException | NumberFormatException | SecurityException notOnThisSystem) {
            // no /proc (not Linux) or an unexpected format: trims are still counted
        }
        return -1;
    }
}
