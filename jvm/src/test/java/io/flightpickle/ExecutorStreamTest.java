package io.flightpickle;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flightpickle.spark.LocalExecutorService;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.BigIntVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.Field;
import org.apache.arrow.vector.types.pojo.Schema;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Batches through a real executor service (started as the executor plugin starts it) and back,
 * across JNI by the Arrow C Data Interface; the allocator's close proves every buffer handed to
 * Rust came back and every buffer Rust handed over was released.
 */
class ExecutorStreamTest {

    private static final Schema INPUT = schema("x");
    private static final Schema OUTPUT = schema("y");
    private static final ExecutorStream.Options OPTIONS = new ExecutorStream.Options(2, Duration.ofSeconds(60), 1 << 20);
    private static final String DOUBLE = String.join("\n",
            "import pyarrow as pa, pyarrow.compute as pc",
            "def double(batches):",
            "    for batch in batches:",
            "        yield pa.RecordBatch.from_arrays([pc.multiply(batch.column(0), 2)], names=['y'])");
    private static final String SLOW = String.join("\n",
            "import time",
            "def slow(batches):",
            "    for batch in batches:",
            "        time.sleep(3)",
            "        yield batch.rename_columns(['y'])");
    private static final String RAISE = String.join("\n",
            "def fail_on_the_second(batches):",
            "    for i, batch in enumerate(batches):",
            "        if i == 1:",
            "            raise ZeroDivisionError('the second batch is not welcome')",
            "        yield batch.rename_columns(['y'])");

    @TempDir
    static Path workDir;
    private static LocalExecutorService service;

    @BeforeAll
    static void startService() throws IOException {
        service = LocalExecutorService.start(Fixtures.python(), 1, 2.0, workDir);
    }

    @AfterAll
    static void stopService() {
        service.close();
    }

    private static Schema schema(String column) {
        return new Schema(List.of(Field.nullable(column, new ArrowType.Int(64, true))));
    }

    @Test
    void batchesGoThroughThePythonFunctionAndComeBackInOrder() throws Exception {
        Sealed function = Sealed.function(DOUBLE, "double");
        List<Long> results = new ArrayList<>();
        try (BufferAllocator allocator = new RootAllocator();
                ExecutorStream stream = open(function, allocator);
                VectorSchemaRoot input = VectorSchemaRoot.create(INPUT, allocator)) {
            for (int batch = 0; batch < 5; batch++) {
                fill(input, batch * 1000, 1000);
                stream.push(input);
                drain(stream, false, results);
            }
            stream.finish();
            drain(stream, true, results);
            assertNull(stream.pull(true), "the end repeats");
        }
        assertEquals(5000, results.size());
        for (int i = 0; i < results.size(); i++) {
            assertEquals(2L * i, results.get(i));
        }
    }

    private static final String KEY_TIMES_ROWS = String.join("\n",
            "import pandas as pd",
            "def key_times_rows(key, frame):",
            "    return pd.DataFrame({'y': [int(key[0]) * len(frame)]})");

    @Test
    void aGroupedStreamGetsItsKeysAndTheServiceReportsItsStats() throws Exception {
        Sealed function = Sealed.function(KEY_TIMES_ROWS, "key_times_rows");
        List<ExecutorStream.Stats> stats = new ArrayList<>();
        for (int attempt = 0; attempt < 2; attempt++) {
            List<Long> results = new ArrayList<>();
            try (BufferAllocator allocator = new RootAllocator();
                    ExecutorStream stream = ExecutorStream.open(ExecutorStream.Endpoint.unix(service.socket()),
                            ExecutorStream.Kind.GROUPED_MAP_PANDAS, ExecutorStream.Body.of(function.envelope()),
                            function.digest(), List.of("x"), INPUT, OUTPUT, OPTIONS, allocator);
                    VectorSchemaRoot group = VectorSchemaRoot.create(INPUT, allocator)) {
                for (long key = 1; key <= 3; key++) { // group k: k rows of value k
                    BigIntVector column = (BigIntVector) group.getVector(0);
                    column.allocateNew((int) key);
                    for (int row = 0; row < key; row++) {
                        column.set(row, key);
                    }
                    group.setRowCount((int) key);
                    stream.push(group);
                }
                assertTrue(stream.stats().isEmpty(), "no stats before the status");
                stream.finish();
                drain(stream, true, results);
                stats.add(stream.stats().orElseThrow());
            }
            assertEquals(List.of(1L, 4L, 9L), results);
        }
        assertTrue(stats.get(0).functionNanos() > 0 && stats.get(1).functionNanos() > 0, stats.toString());
        assertEquals(List.of(false, true), stats.stream().map(ExecutorStream.Stats::functionCached).toList(),
                "the second stream finds the function the first opened");
    }

    @Test
    void aGroupKeyNameWithANulIsRefusedBeforeAnythingIsSent() {
        try (BufferAllocator allocator = new RootAllocator()) {
            assertThrows(IllegalArgumentException.class, () -> ExecutorStream.open(
                    ExecutorStream.Endpoint.unix(service.socket()), ExecutorStream.Kind.GROUPED_MAP_PANDAS,
                    ExecutorStream.Body.of(new byte[] {1}), "0".repeat(64),
                    List.of("a\0b"), INPUT, OUTPUT, OPTIONS, allocator));
        }
    }

    @Test
    void aFunctionInALargeCommandsBroadcastFileIsReadOnlyWhenTheServiceAsksForIt() throws Exception {
        Path file = Sealed.broadcastFile(DOUBLE, "double");
        String digest = CommandInspector.broadcastCommandHeader(file).digest();
        List<Long> first = runOnce(ExecutorStream.Body.inBroadcastFile(file), digest, 5);
        assertEquals(List.of(10L), first);
        // The service keeps the function by digest: a later stream opens without the file.
        Files.delete(file);
        assertEquals(List.of(12L), runOnce(ExecutorStream.Body.inBroadcastFile(file), digest, 6));
    }

    @Test
    void aBroadcastFileWithoutASealedCommandIsRefusedWithItsReason() throws Exception {
        Path plain = Files.createTempFile(workDir, "plain-", ".pkl");
        Files.write(plain, new byte[] {(byte) 0x80, 5, 'K', 1, '.'});
        NativeException notSealed = assertThrows(NativeException.class,
                () -> CommandInspector.broadcastCommandHeader(plain));
        assertTrue(notSealed.getMessage().contains("holds no sealed command"), notSealed.getMessage());
        NativeException missing = assertThrows(NativeException.class, () -> runOnce(
                ExecutorStream.Body.inBroadcastFile(workDir.resolve("gone.pkl")), "1".repeat(64), 1));
        assertTrue(missing.getMessage().contains("gone.pkl"), missing.getMessage());
    }

    private static List<Long> runOnce(ExecutorStream.Body body, String digest, long value) {
        List<Long> results = new ArrayList<>();
        try (BufferAllocator allocator = new RootAllocator();
                ExecutorStream stream = ExecutorStream.open(service.socket(), ExecutorStream.Kind.MAP_ARROW, body,
                        digest, INPUT, OUTPUT, OPTIONS, allocator);
                VectorSchemaRoot input = VectorSchemaRoot.create(INPUT, allocator)) {
            fill(input, value, 1);
            stream.push(input);
            stream.finish();
            drain(stream, true, results);
        }
        return results;
    }

    @Test
    void aStreamCancelledFromAnotherThreadStopsWaitingAtOnce() throws Exception {
        Sealed function = Sealed.function(SLOW, "slow");
        try (BufferAllocator allocator = new RootAllocator();
                ExecutorStream stream = open(function, allocator);
                VectorSchemaRoot input = VectorSchemaRoot.create(INPUT, allocator)) {
            fill(input, 0, 1);
            stream.push(input);
            stream.finish();
            Thread canceller = new Thread(() -> {
                try {
                    Thread.sleep(200);
                } catch (InterruptedException stop) {
                    return;
                }
                stream.cancel();
            });
            canceller.start();
            // Without the cancel this waits for the function's result.
            NativeException failure = assertThrows(NativeException.class, () -> stream.pull(true));
            assertEquals("cancelled", failure.kind(), failure.getMessage());
            canceller.join();
        }
    }

    @Test
    void aFailingFunctionEndsTheStreamWithItsTraceback() throws Exception {
        Sealed function = Sealed.function(RAISE, "fail_on_the_second");
        try (BufferAllocator allocator = new RootAllocator();
                ExecutorStream stream = open(function, allocator);
                VectorSchemaRoot input = VectorSchemaRoot.create(INPUT, allocator)) {
            NativeException failure = assertThrows(NativeException.class, () -> {
                for (int batch = 0; batch < 3; batch++) {
                    fill(input, 0, 10);
                    stream.push(input);
                }
                stream.finish();
                drain(stream, true, new ArrayList<>());
            });
            assertEquals("udf_error", failure.kind());
            assertTrue(failure.getMessage().contains("ZeroDivisionError: the second batch is not welcome"),
                    failure.getMessage());
            assertTrue(failure.getMessage().contains("Traceback"), failure.getMessage());
        }
    }

    @Test
    void aServiceThatDiesIsStartedAgain() throws Exception {
        long before = service.pid();
        ProcessHandle.of(before).orElseThrow().destroyForcibly();
        long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
        while (service.pid() == before && System.nanoTime() < deadline) {
            Thread.sleep(100);
        }
        assertTrue(service.pid() != before, "the service was not started again");
        // A stream opened while the new service starts up may find no socket yet: retry briefly.
        List<Long> results = new ArrayList<>();
        Sealed function = Sealed.function(DOUBLE, "double");
        for (int attempt = 0; results.isEmpty(); attempt++) {
            try (BufferAllocator allocator = new RootAllocator();
                    ExecutorStream stream = open(function, allocator);
                    VectorSchemaRoot input = VectorSchemaRoot.create(INPUT, allocator)) {
                fill(input, 21, 1);
                stream.push(input);
                stream.finish();
                drain(stream, true, results);
            } catch (NativeException notYet) {
                if (attempt > 100) {
                    throw notYet;
                }
                Thread.sleep(200);
            }
        }
        assertEquals(List.of(42L), results);
    }

    @Test
    void anUnreachableServiceIsAnErrorAndLeaksNothing() {
        try (BufferAllocator allocator = new RootAllocator()) {
            NativeException failure = assertThrows(NativeException.class, () -> ExecutorStream.open(
                    workDir.resolve("nobody-listens.sock"), ExecutorStream.Kind.MAP_ARROW, ExecutorStream.Body.of(new byte[] {1}), "0".repeat(64),
                    INPUT, OUTPUT, OPTIONS, allocator));
            assertEquals("io", failure.kind());
        }
    }

    @Test
    void batchesGoThroughARemotePoolOverFlightWithItsToken() throws Exception {
        Path token = Files.writeString(workDir.resolve("pool-token"), "pool-s3cret");
        Process pool = new ProcessBuilder(Fixtures.python(), "-m", "flightpickle.executor", "serve", "--listen",
                "grpc://127.0.0.1:0", "--workers", "1", "--token-file", token.toString())
                .redirectError(ProcessBuilder.Redirect.INHERIT).start();
        try {
            String said = new java.io.BufferedReader(new java.io.InputStreamReader(pool.getInputStream(),
                    java.nio.charset.StandardCharsets.UTF_8)).readLine();
            java.util.regex.Matcher uri = java.util.regex.Pattern.compile("listening on (grpc://\\S+) ").matcher(
                    String.valueOf(said));
            assertTrue(uri.find(), "the pool did not start: " + said);
            Sealed function = Sealed.function(DOUBLE, "double");
            List<Long> results = new ArrayList<>();
            byte[] right = "pool-s3cret".getBytes(java.nio.charset.StandardCharsets.UTF_8);
            try (BufferAllocator allocator = new RootAllocator();
                    ExecutorStream stream = openAt(ExecutorStream.Endpoint.remote(uri.group(1), right, null),
                            function, allocator);
                    VectorSchemaRoot input = VectorSchemaRoot.create(INPUT, allocator)) {
                for (int batch = 0; batch < 3; batch++) {
                    fill(input, batch * 100, 100);
                    stream.push(input);
                    drain(stream, false, results);
                }
                stream.finish();
                drain(stream, true, results);
                // The pool's worker opened the function from the body: a miss, with its time.
                ExecutorStream.Stats stats = stream.stats().orElseThrow();
                assertFalse(stats.functionCached());
                assertTrue(stats.functionNanos() > 0, stats.toString());
            }
            assertEquals(300, results.size());
            assertEquals(2L * 299, results.get(299));
            try (BufferAllocator allocator = new RootAllocator()) {
                byte[] wrong = "guess".getBytes(java.nio.charset.StandardCharsets.UTF_8);
                NativeException refused = assertThrows(NativeException.class, () -> openAt(
                        ExecutorStream.Endpoint.remote(uri.group(1), wrong, null), function, allocator));
                assertEquals("unauthenticated", refused.kind(), refused.getMessage());
            }
        } finally {
            pool.destroy();
            if (!pool.waitFor(30, java.util.concurrent.TimeUnit.SECONDS)) {
                pool.destroyForcibly();
            }
        }
    }

    private static ExecutorStream openAt(ExecutorStream.Endpoint endpoint, Sealed function, BufferAllocator allocator) {
        return ExecutorStream.open(endpoint, ExecutorStream.Kind.MAP_ARROW, ExecutorStream.Body.of(function.envelope()),
                function.digest(), INPUT, OUTPUT, OPTIONS, allocator);
    }

    private static ExecutorStream open(Sealed function, BufferAllocator allocator) {
        return ExecutorStream.open(service.socket(), ExecutorStream.Kind.MAP_ARROW, ExecutorStream.Body.of(function.envelope()),
                function.digest(), INPUT, OUTPUT, OPTIONS, allocator);
    }

    private static void fill(VectorSchemaRoot root, long first, int rows) {
        BigIntVector column = (BigIntVector) root.getVector(0);
        column.allocateNew(rows);
        for (int i = 0; i < rows; i++) {
            column.set(i, first + i);
        }
        root.setRowCount(rows);
    }

    private static void drain(ExecutorStream stream, boolean wait, List<Long> into) {
        VectorSchemaRoot result;
        while ((result = stream.pull(wait)) != null) {
            try (VectorSchemaRoot owned = result) {
                BigIntVector column = (BigIntVector) owned.getVector(0);
                for (int i = 0; i < owned.getRowCount(); i++) {
                    into.add(column.get(i));
                }
            }
        }
    }

    /** A function sealed by the real Python side, with its digest. */
    private record Sealed(byte[] envelope, String digest) {
        static Sealed function(String source, String name) throws IOException, InterruptedException {
            Path script = Files.createTempFile(workDir, "seal-", ".py");
            Files.writeString(script, source + "\nimport sys, flightpickle.sealing as s\n"
                    + "sys.stdout.buffer.write(s.seal(" + name + "))\n");
            Process python = new ProcessBuilder(Fixtures.python(), script.toString())
                    .redirectError(ProcessBuilder.Redirect.INHERIT).start();
            byte[] envelope = python.getInputStream().readAllBytes();
            assertEquals(0, python.waitFor(), "sealing in Python failed");
            return new Sealed(envelope, Envelope.read(envelope).digest());
        }

        /**
         * The broadcast file PySpark writes for a command over its threshold, holding the sealed
         * command flightpickle's driver hook makes of the function.
         */
        static Path broadcastFile(String source, String name) throws IOException, InterruptedException {
            Path file = Files.createTempFile(workDir, "broadcast-", ".pkl");
            Path script = Files.createTempFile(workDir, "broadcast-", ".py");
            Files.writeString(script, source + "\nimport pickle, sys, flightpickle.sealing as s\n"
                    + "command = pickle.dumps(s.Sealed(s.seal(" + name + "), True), 5)\n"
                    + "with open(sys.argv[1], 'wb') as f:\n    pickle.dump(command, f, 5)\n");
            Process python = new ProcessBuilder(Fixtures.python(), script.toString(), file.toString())
                    .inheritIO().start();
            assertEquals(0, python.waitFor(), "writing the broadcast file in Python failed");
            return file;
        }
    }
}
