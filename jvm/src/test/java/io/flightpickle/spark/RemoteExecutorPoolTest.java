package io.flightpickle.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RemoteExecutorPoolTest {

    @TempDir
    Path dir;

    private static FlightPickleConf remote(Map<String, String> extra) {
        Map<String, String> conf = new java.util.HashMap<>(Map.of("spark.flightpickle.transport", "remote",
                "spark.flightpickle.executor.uri", "grpc://127.0.0.1:8815"));
        conf.putAll(extra);
        return FlightPickleConf.from(conf);
    }

    @Test
    void theTokenComesFromItsFileOrElseTheEnvironmentAndNeverShows() throws Exception {
        Path file = Files.writeString(dir.resolve("token"), "from-the-file\n");
        RemoteExecutorPool.configure(remote(Map.of("spark.flightpickle.executor.tokenFile", file.toString())),
                Map.of(FlightPickleConf.TOKEN_VARIABLE, "from-the-environment"));
        String shown = RemoteExecutorPool.endpoint("grpc://127.0.0.1:8815").toString();
        assertEquals("grpc://127.0.0.1:8815 (with a bearer token)", shown);
        assertFalse(shown.contains("from-the"), shown);
        RemoteExecutorPool.configure(remote(Map.of()), Map.of());
        assertEquals("grpc://127.0.0.1:8815", RemoteExecutorPool.endpoint("grpc://127.0.0.1:8815").toString());
        RemoteExecutorPool.configure(remote(Map.of()), Map.of(FlightPickleConf.TOKEN_VARIABLE, "env"));
        assertTrue(RemoteExecutorPool.endpoint("grpc://h:1").toString().endsWith("(with a bearer token)"));
    }

    @Test
    void aMissingFileOrAnEmptyTokenFailsTheExecutorsStartByName() throws Exception {
        Path gone = dir.resolve("gone");
        UncheckedIOException missing = assertThrows(UncheckedIOException.class, () -> RemoteExecutorPool.configure(
                remote(Map.of("spark.flightpickle.executor.tokenFile", gone.toString())), Map.of()));
        assertTrue(missing.getMessage().contains("spark.flightpickle.executor.tokenFile=" + gone), missing.getMessage());
        Path empty = Files.writeString(dir.resolve("empty"), " \n");
        IllegalStateException blank = assertThrows(IllegalStateException.class, () -> RemoteExecutorPool.configure(
                remote(Map.of("spark.flightpickle.executor.tokenFile", empty.toString())), Map.of()));
        assertTrue(blank.getMessage().contains("bearer token"), blank.getMessage());
    }
}
