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
}
