package io.flightpickle.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Summing the counts the Python workers leave (python/flightpickle/spark/worker_reports.py). */
class WorkerCacheReportsTest {

    @TempDir
    Path directory;

    @Test
    void countsOfEveryWorkerFileAreSummed() throws IOException {
        Files.writeString(directory.resolve("101-5.counts"), "4 1\n");
        Files.writeString(directory.resolve("102-9.counts"), "0 2\n");
        WorkerCacheReports reports = new WorkerCacheReports(directory);
        assertArrayEquals(new long[] {4, 3}, reports.sum());
        assertEquals(4, reports.hits());
        assertEquals(3, reports.misses());
    }

    @Test
    void filesBeingWrittenOrNotOursAreSkipped() throws IOException {
        Files.writeString(directory.resolve("101-5.counts"), "7 1\n");
        Files.writeString(directory.resolve("102-9.counts"), "");
        Files.writeString(directory.resolve("103-9.counts"), "seven 1\n");
        Files.writeString(directory.resolve("104-9.counts"), "1 2 3\n");
        Files.writeString(directory.resolve("105-9.counts.partial"), "100 100\n");
        Files.writeString(directory.resolve("notes.txt"), "100 100\n");
        assertArrayEquals(new long[] {7, 1}, new WorkerCacheReports(directory).sum());
    }

    @Test
    void noDirectoryMeansNoWorkersYet() {
        assertArrayEquals(new long[] {0, 0}, new WorkerCacheReports(directory.resolve("absent")).sum());
    }
}
