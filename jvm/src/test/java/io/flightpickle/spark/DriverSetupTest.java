package io.flightpickle.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import java.util.HashMap;
import org.junit.jupiter.api.Test;

class DriverSetupTest {

    private static final String EXTENSIONS = "io.flightpickle.spark.FlightPickleExtensions";

    @Test
    void setsWhatFlightpickleNeeds() {
        SettableConf conf = SettableConf.of(new HashMap<>());
        List<String> set = DriverSetup.apply(conf, FlightPickleConf.from(Map.of()));
        assertEquals("flightpickle.spark.daemon", conf.get("spark.python.daemon.module", null));
        assertEquals("true", conf.get("spark.flightpickle.python.enabled", null));
        assertEquals(EXTENSIONS, conf.get("spark.sql.extensions", null));
        assertEquals(3, set.size(), set.toString());
    }

    @Test
    void neverReplacesWhatTheUserSet() {
        SettableConf conf = SettableConf.of(new HashMap<>(Map.of(
                "spark.python.daemon.module", "my.daemon",
                "spark.flightpickle.python.enabled", "false",
                "spark.sql.extensions", "com.example.Ext")));
        DriverSetup.apply(conf, FlightPickleConf.from(conf.all()));
        assertEquals("my.daemon", conf.get("spark.python.daemon.module", null));
        assertEquals("false", conf.get("spark.flightpickle.python.enabled", null));
        assertEquals("com.example.Ext," + EXTENSIONS, conf.get("spark.sql.extensions", null));
    }

    @Test
    void addsTheExtensionOnce() {
        SettableConf conf = SettableConf.of(new HashMap<>(Map.of("spark.sql.extensions", EXTENSIONS + ", com.example.Ext")));
        List<String> set = DriverSetup.apply(conf, FlightPickleConf.from(Map.of()));
        assertEquals(EXTENSIONS + ", com.example.Ext", conf.get("spark.sql.extensions", null));
        assertTrue(set.stream().noneMatch(entry -> entry.startsWith("spark.sql.extensions")), set.toString());
    }

    @Test
    void leavesTheDaemonAloneForStockExecutors() {
        SettableConf conf = SettableConf.of(new HashMap<>(Map.of("spark.flightpickle.target", "pyspark")));
        DriverSetup.apply(conf, FlightPickleConf.from(conf.all()));
        assertEquals(false, conf.contains("spark.python.daemon.module"));
    }

    @Test
    void boundsTheExecutorsArenasForFlightpickleOperators() {
        SettableConf conf = SettableConf.of(new HashMap<>(Map.of("spark.flightpickle.transport", "remote",
                "spark.flightpickle.executor.uri", "grpc://pool:8815")));
        List<String> set = DriverSetup.apply(conf, FlightPickleConf.from(conf.all()));
        assertEquals("2", conf.get("spark.executorEnv.MALLOC_ARENA_MAX", null));
        assertTrue(set.contains("spark.executorEnv.MALLOC_ARENA_MAX=2"), set.toString());
        assertEquals(Map.of("MALLOC_ARENA_MAX", "2"), conf.executorEnvironment());
    }

    @Test
    void takesTheArenaCountFromItsConf() {
        SettableConf conf = SettableConf.of(new HashMap<>(Map.of("spark.flightpickle.transport", "local",
                "spark.flightpickle.executor.mallocArenaMax", "3")));
        DriverSetup.apply(conf, FlightPickleConf.from(conf.all()));
        assertEquals("3", conf.get("spark.executorEnv.MALLOC_ARENA_MAX", null));
    }

    @Test
    void leavesTheArenasAloneWhenTurnedOffOrSparkRunsThePythonOperators() {
        for (Map<String, String> entries : List.of(
                Map.of("spark.flightpickle.transport", "local", "spark.flightpickle.executor.mallocArenaMax", "0"),
                Map.<String, String>of())) {
            SettableConf conf = SettableConf.of(new HashMap<>(entries));
            DriverSetup.apply(conf, FlightPickleConf.from(conf.all()));
            assertEquals(Map.of(), conf.executorEnvironment(), entries.toString());
        }
    }

    @Test
    void neverReplacesTheUsersArenaBound() {
        assertKeepsExecutorEnvironment(Map.of("MALLOC_ARENA_MAX", "8"));
        assertKeepsExecutorEnvironment(Map.of("GLIBC_TUNABLES", "glibc.malloc.arena_max=4"));
    }

    private static void assertKeepsExecutorEnvironment(Map<String, String> environment) {
        SettableConf conf = SettableConf.of(new HashMap<>(Map.of("spark.flightpickle.transport", "local")));
        environment.forEach(conf::setExecutorEnvironment);
        List<String> set = DriverSetup.apply(conf, FlightPickleConf.from(conf.all()));
        assertEquals(environment, conf.executorEnvironment());
        assertTrue(set.stream().noneMatch(entry -> entry.startsWith("spark.executorEnv.")), set.toString());
    }
}
