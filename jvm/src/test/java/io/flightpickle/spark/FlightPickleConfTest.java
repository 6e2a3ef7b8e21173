package io.flightpickle.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class FlightPickleConfTest {

    @Test
    void defaultsWhenNothingIsSet() {
        FlightPickleConf conf = FlightPickleConf.from(Map.of("spark.app.name", "x"));
        assertTrue(conf.pythonEnabled());
        assertEquals("native", conf.target());
        assertFalse(conf.requireSigned());
        assertEquals(Optional.empty(), conf.allowedModules());
        assertFalse(conf.checksCommands());
        assertFalse(conf.signsCommands());
    }

    @Test
    void readsEveryConf() {
        FlightPickleConf conf = FlightPickleConf.from(Map.of(
                "spark.flightpickle.python.enabled", "FALSE",
                "spark.flightpickle.requireSigned", " true ",
                "spark.flightpickle.allowedModules", "numpy, my_pkg.helpers,,pandas",
                "spark.flightpickle.pickleByValue", "a.b",
                "spark.flightpickle.pickleLocalModules", "true",
                "spark.flightpickle.signing.secret", "s3cret"));
        assertFalse(conf.pythonEnabled());
        assertTrue(conf.requireSigned());
        assertEquals(Optional.of(List.of("numpy", "my_pkg.helpers", "pandas")), conf.allowedModules());
        assertTrue(conf.checksCommands());
        assertTrue(conf.signsCommands());
    }

    @Test
    void theTransportIsSparksUnlessLocalIsAskedFor() {
        FlightPickleConf defaults = FlightPickleConf.from(Map.of());
        assertEquals("spark", defaults.transport());
        assertFalse(defaults.replacesPythonOperators());
        FlightPickleConf local = FlightPickleConf.from(Map.of(
                "spark.flightpickle.transport", "local",
                "spark.flightpickle.executor.workers", "3",
                "spark.flightpickle.executor.uri", "unix:///tmp/pool.sock"));
        assertTrue(local.replacesPythonOperators());
        assertEquals(Optional.of(3), local.executorWorkers());
        assertEquals(Optional.of("unix:///tmp/pool.sock"), local.executorUri());
        assertEquals(Map.of("spark.flightpickle.transport", "local", "spark.flightpickle.executor.workers", "3"),
                FlightPickleDriverPlugin.forExecutors(Map.of("spark.flightpickle.transport", "local",
                        "spark.flightpickle.executor.workers", "3", "spark.app.name", "x")));
    }

    @Test
    void executorsTrimTheirNativeHeapOnlyWhenFlightpickleStreamsThroughThem() {
        assertFalse(FlightPickleConf.from(Map.of()).trimsExecutorMemory());
        FlightPickleConf local = FlightPickleConf.from(Map.of("spark.flightpickle.transport", "local"));
        assertTrue(local.trimsExecutorMemory());
        assertEquals(Duration.ofSeconds(60), local.memoryTrimInterval());
        FlightPickleConf often = FlightPickleConf.from(Map.of("spark.flightpickle.transport", "local",
                "spark.flightpickle.executor.memoryTrimInterval", " 2min "));
        assertEquals(Duration.ofMinutes(2), often.memoryTrimInterval());
        assertEquals(Duration.ofMillis(250), FlightPickleConf.from(Map.of(
                "spark.flightpickle.executor.memoryTrimInterval", "250")).memoryTrimInterval());
        assertEquals(Duration.ofHours(1), FlightPickleConf.from(Map.of(
                "spark.flightpickle.executor.memoryTrimInterval", "1H")).memoryTrimInterval());
        FlightPickleConf off = FlightPickleConf.from(Map.of("spark.flightpickle.transport", "local",
                "spark.flightpickle.executor.memoryTrimInterval", "0"));
        assertFalse(off.trimsExecutorMemory());
        assertEquals(Map.of("spark.flightpickle.executor.memoryTrimInterval", "0"),
                FlightPickleDriverPlugin.forExecutors(Map.of("spark.flightpickle.executor.memoryTrimInterval", "0")));
    }

    @Test
    void executorArenasAreBoundedByDefaultOnlyWhenFlightpickleStreamsThroughThem() {
        assertFalse(FlightPickleConf.from(Map.of()).boundsExecutorArenas());
        FlightPickleConf local = FlightPickleConf.from(Map.of("spark.flightpickle.transport", "local"));
        assertTrue(local.boundsExecutorArenas());
        assertEquals(2, local.executorMallocArenaMax());
        FlightPickleConf four = FlightPickleConf.from(Map.of("spark.flightpickle.transport", "local",
                "spark.flightpickle.executor.mallocArenaMax", " 4 "));
        assertEquals(4, four.executorMallocArenaMax());
        FlightPickleConf off = FlightPickleConf.from(Map.of("spark.flightpickle.transport", "local",
                "spark.flightpickle.executor.mallocArenaMax", "0"));
        assertFalse(off.boundsExecutorArenas());
        // Only the driver acts on it, before any executor starts.
        assertEquals(Map.of(), FlightPickleDriverPlugin.forExecutors(Map.of("spark.flightpickle.executor.mallocArenaMax", "4")));
    }

    @Test
    void anArenaCountThatIsNoCountIsNamed() {
        for (String bad : List.of("two", "-1", "1.5", "", "99999999999")) {
            String message = invalid(Map.of("spark.flightpickle.executor.mallocArenaMax", bad));
            assertTrue(message.contains("spark.flightpickle.executor.mallocArenaMax=" + bad
                    + " is not a count of malloc arenas; use a whole number such as 2, or 0 to leave glibc's own"), message);
        }
    }

    @Test
    void aMemoryTrimIntervalThatIsNoTimeIsNamed() {
        for (String bad : List.of("often", "1.5s", "-5s", "10 parsecs", "", "9999999999d")) {
            String message = invalid(Map.of("spark.flightpickle.executor.memoryTrimInterval", bad));
            assertTrue(message.contains("spark.flightpickle.executor.memoryTrimInterval=" + bad
                    + " is not a time interval; use a Spark time such as 60s"), message);
        }
    }

    @Test
    void aBadTransportOrServiceIsNamed() {
        String message = invalid(Map.of(
                "spark.flightpickle.transport", "local",
                "spark.flightpickle.executor.workers", "0",
                "spark.flightpickle.executor.uri", "grpc://pool:8815"));
        assertTrue(message.contains("spark.flightpickle.executor.workers=0 is not a positive whole number"), message);
        assertTrue(message.contains("spark.flightpickle.executor.uri=grpc://pool:8815 is a remote pool: set"
                + " spark.flightpickle.transport=remote"), message);
        String notUnix = invalid(Map.of("spark.flightpickle.transport", "local", "spark.flightpickle.executor.uri",
                "/tmp/pool.sock"));
        assertTrue(notUnix.contains("is not a Unix socket URI; use unix:///absolute/path"), notUnix);
        String sealedOnly = invalid(Map.of("spark.flightpickle.transport", "local", "spark.flightpickle.target", "pyspark"));
        assertTrue(sealedOnly.contains("transport=local needs sealed commands"), sealedOnly);
        assertTrue(invalid(Map.of("spark.flightpickle.transport", "pipe")).contains("use one of spark, local, remote"));
    }

    @Test
    void theRemoteTransportStreamsToThePoolItNames() {
        Map<String, String> settings = Map.of(
                "spark.flightpickle.transport", "remote",
                "spark.flightpickle.executor.uri", " grpc+tls://pool.example:8815 ",
                "spark.flightpickle.executor.tokenFile", "/etc/flightpickle/token",
                "spark.flightpickle.executor.tlsCaFile", "/etc/flightpickle/ca.pem");
        FlightPickleConf remote = FlightPickleConf.from(settings);
        assertTrue(remote.replacesPythonOperators() && remote.streamsToRemotePool());
        assertEquals(Optional.of("grpc+tls://pool.example:8815"), remote.executorUri());
        assertEquals(Optional.of("/etc/flightpickle/token"), remote.executorTokenFile());
        assertEquals(Optional.of("/etc/flightpickle/ca.pem"), remote.executorTlsCaFile());
        assertEquals(settings, FlightPickleDriverPlugin.forExecutors(settings), "the executors get all four");
        for (String uri : List.of("grpc://127.0.0.1:1", "grpc://[::1]:65535", "grpc://pool:8815")) {
            assertEquals(Optional.empty(), FlightPickleConf.poolUriProblem(uri), uri);
        }
        assertFalse(FlightPickleConf.from(Map.of("spark.flightpickle.transport", "local")).streamsToRemotePool());
    }

    @Test
    void aRemoteTransportWithoutAGoodPoolAddressSaysWhatToSet() {
        String missing = invalid(Map.of("spark.flightpickle.transport", "remote"));
        assertTrue(missing.contains("spark.flightpickle.transport=remote needs spark.flightpickle.executor.uri"
                + "=grpc://host:port"), missing);
        for (String bad : List.of("unix:///tmp/pool.sock", "grpc://pool", "grpc://pool:0", "grpc://pool:70000",
                "grpc://pool:8815/path", "http://pool:8815")) {
            String message = invalid(Map.of("spark.flightpickle.transport", "remote",
                    "spark.flightpickle.executor.uri", bad));
            assertTrue(message.contains("spark.flightpickle.executor.uri=" + bad + " is not a pool address; use"
                    + " grpc://host:port"), message);
        }
        String noCa = invalid(Map.of("spark.flightpickle.transport", "remote",
                "spark.flightpickle.executor.uri", "grpc+tls://pool:8815"));
        assertTrue(noCa.contains("uses TLS: set spark.flightpickle.executor.tlsCaFile"), noCa);
        String caWithoutTls = invalid(Map.of("spark.flightpickle.transport", "remote",
                "spark.flightpickle.executor.uri", "grpc://pool:8815", "spark.flightpickle.executor.tlsCaFile", "ca"));
        assertTrue(caWithoutTls.contains("tlsCaFile is only for a grpc+tls://"), caWithoutTls);
        String tokenWhenLocal = invalid(Map.of("spark.flightpickle.transport", "local",
                "spark.flightpickle.executor.tokenFile", "/t"));
        assertTrue(tokenWhenLocal.contains("spark.flightpickle.executor.tokenFile is only used with"
                + " spark.flightpickle.transport=remote"), tokenWhenLocal);
        String sealedOnly = invalid(Map.of("spark.flightpickle.transport", "remote", "spark.flightpickle.target",
                "pyspark", "spark.flightpickle.executor.uri", "grpc://pool:8815"));
        assertTrue(sealedOnly.contains("transport=remote needs sealed commands"), sealedOnly);
    }

    @Test
    void anEmptyAllowListAllowsOnlyWhatEveryCommandNeeds() {
        FlightPickleConf conf = FlightPickleConf.from(Map.of("spark.flightpickle.allowedModules", ""));
        assertEquals(Optional.of(List.of()), conf.allowedModules());
        assertTrue(conf.checksCommands());
    }

    @Test
    void everyInvalidEntryIsNamedWithWhatItAccepts() {
        String message = invalid(Map.of(
                "spark.flightpickle.requireSigned", "yes",
                "spark.flightpickle.target", "cloudpickle",
                "spark.flightpickle.allowedModules", "numpy,os/path",
                "spark.flightpickle.pickleLocalModules", "1"));
        assertTrue(message.contains("spark.flightpickle.requireSigned=yes is not a boolean; use true or false"), message);
        assertTrue(message.contains("spark.flightpickle.target=cloudpickle is not a target; use one of native, pyspark"),
                message);
        assertTrue(message.contains("lists \"os/path\", which is not a Python module name"), message);
        assertTrue(message.contains("spark.flightpickle.pickleLocalModules=1 is not a boolean"), message);
    }

    @Test
    void unknownKeysAreRefusedWithASuggestion() {
        String message = invalid(Map.of("spark.flightpickle.requiresigned", "true"));
        assertTrue(message.contains("spark.flightpickle.requiresigned is not a flightpickle conf"
                + " (did you mean spark.flightpickle.requireSigned?)"), message);
        String unrelated = invalid(Map.of("spark.flightpickle.colour", "blue"));
        assertTrue(unrelated.contains("the known ones are spark.flightpickle.allowedModules"), unrelated);
        assertFalse(unrelated.contains("did you mean"), unrelated);
    }

    @Test
    void signingNeedsTheNativeTarget() {
        String message = invalid(Map.of(
                "spark.flightpickle.requireSigned", "true", "spark.flightpickle.target", "pyspark"));
        assertTrue(message.contains("target=pyspark writes plain pickles, which cannot be signed"), message);
        assertTrue(invalid(Map.of("spark.flightpickle.signing.secret", "")).contains("signing.secret is empty"));
    }

    private static String invalid(Map<String, String> conf) {
        IllegalArgumentException error = assertThrows(IllegalArgumentException.class, () -> FlightPickleConf.from(conf));
        assertTrue(error.getMessage().startsWith("invalid flightpickle configuration:"), error.getMessage());
        return error.getMessage();
    }
}
