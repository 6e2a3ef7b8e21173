package io.flightpickle.spark;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.function.Supplier;
import org.apache.spark.SparkEnv;
import org.apache.spark.SparkFiles;

/**
 * The cache counts this executor's Python workers leave on disk, summed.
 *
 * <p>A forked Python worker has no channel to the executor's metric registry, but both know
 * SparkFiles' root directory: Spark starts the Python daemon there. Each worker forked from
 * {@code flightpickle.spark.daemon} keeps one file in {@link #DIRECTORY_NAME} holding its
 * cumulative hits and misses ({@code python/flightpickle/spark/worker_reports.py} writes them).
 * Counts only grow, so files of workers that have exited still count.
 */
final class WorkerCacheReports {

    static final String DIRECTORY_NAME = "flightpickle-worker-reports";

    /** Where the files are, or null while that cannot be known yet. */
    private final Supplier<Path> locate;

    private volatile Path directory;

    WorkerCacheReports(Path directory) {
        this(() -> directory);
    }

    private WorkerCacheReports(Supplier<Path> locate) {
        this.locate = locate;
    }

    /**
     * The reports of the Python workers this JVM starts, wherever Spark starts them. Found when
     * the metric is first read, not when the plugin starts, so that only a running executor
     * (never a unit test of the plugin) loads Spark's environment classes.
     */
    static WorkerCacheReports forThisExecutor() {
        return new WorkerCacheReports(() -> SparkEnv.get() == null
                ? null
                : Paths.get(SparkFiles.getRootDirectory(), DIRECTORY_NAME).toAbsolutePath());
    }

    Path directory() {
        Path found = directory;
        if (found == null) {
            found = locate.get();
            directory = found;
        }
        return found;
    }

    long hits() {
        return sum()[0];
    }

    long misses() {
        return sum()[1];
    }

    /**
     * Hits and misses over all workers' files; a file that cannot be read or parsed (being
     * replaced at that moment, or not ours) is skipped, and no directory means no workers yet.
     */
    long[] sum() {
        long[] total = new long[2];
        Path directory = directory();
        if (directory == null || !Files.isDirectory(directory)) {
            return total;
        }
        try (DirectoryStream<Path> files = Files.newDirectoryStream(directory, "*.counts")) {
            for (Path file : files) {
                long[] counts = read(file);
                if (counts != null) {
                    total[0] += counts[0];
                    total[1] += counts[1];
                }
            }
        } catch (IOException | RuntimeException e) {
            // A metric read never fails the executor; the next read tries again.
        }
        return total;
    }

    private static long[] read(Path file) {
        try {
            String[] fields = new String(Files.readAllBytes(file), StandardCharsets.US_ASCII).trim().split(" ");
            if (fields.length != 2) {
                return null;
            }
            return new long[] {Long.parseLong(fields[0]), Long.parseLong(fields[1])};
        } catch (IOException | NumberFormatException e) {
            return null;
        }
    }
}
