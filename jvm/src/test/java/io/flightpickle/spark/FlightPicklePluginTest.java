package io.flightpickle.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flightpickle.BuildInfo;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.apache.spark.api.plugin.DriverPlugin;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FlightPicklePluginTest {

    private static final long PID = ProcessHandle.current().pid();

    private final FlightPicklePlugin plugin = new FlightPicklePlugin();
    private DriverPlugin driver;

    @BeforeEach
    void startDriver() {
        driver = plugin.driverPlugin();
        // The plugin reads neither argument; Spark's are not available outside a cluster.
        assertEquals(Map.of(), driver.init(null, null));
    }

    @AfterEach
    void stopDriver() {
        driver.shutdown();
    }

    @Test
    void executorsReportTheirNativeCoreToTheDriver() {
        startExecutor("1");
        startExecutor("0");

        String expected = "core " + BuildInfo.version() + ", pid " + PID;
        assertEquals(Map.of("0", expected, "1", expected), FlightPicklePlugin.nativeCoreReports());
        assertEquals(List.of("0", "1"), List.copyOf(FlightPicklePlugin.nativeCoreReports().keySet()));
    }

    @Test
    void theDriverRepliesToAReport() throws Exception {
        FakePluginContext context = startExecutor("3");
        assertEquals(List.of("recorded executor 3"), context.replies);
    }

    @Test
    void theReportsAreACopyThatCallersMayChange() throws Exception {
        driver.receive(new NativeCoreReport("5", "0.0.1", 42));
        Map<String, String> reports = FlightPicklePlugin.nativeCoreReports();
        reports.clear();
        assertEquals(Map.of("5", "core 0.0.1, pid 42"), FlightPicklePlugin.nativeCoreReports());
    }

    @Test
    void unknownMessagesAreRejectedWithoutDisturbingTheReports() throws Exception {
        driver.receive(new NativeCoreReport("1", BuildInfo.version(), 7));

        IllegalArgumentException error = assertThrows(IllegalArgumentException.class,
                () -> driver.receive("hello"));
        assertTrue(error.getMessage().contains("java.lang.String"), error.getMessage());
        assertThrows(IllegalArgumentException.class, () -> driver.receive(null));

        assertEquals(Map.of("1", "core " + BuildInfo.version() + ", pid 7"),
                FlightPicklePlugin.nativeCoreReports());
    }

    @Test
    void anExecutorStartsEvenIfTheDriverRejectsItsReport() {
        DriverPlugin rejectingDriver = new DriverPlugin() {
            @Override
            public Object receive(Object message) {
                throw new IllegalArgumentException("not today");
            }
        };
        plugin.executorPlugin().init(new FakePluginContext("9", rejectingDriver), Map.of());
        assertEquals(Map.of(), FlightPicklePlugin.nativeCoreReports());
    }

    @Test
    void shuttingTheDriverDownForgetsTheReports() {
        startExecutor("0");
        driver.shutdown();
        assertEquals(Map.of(), FlightPicklePlugin.nativeCoreReports());
    }

    @Test
    void aNewDriverStartsWithoutTheReportsOfAnUnstoppedOne() {
        startExecutor("0");
        startDriver();
        assertEquals(Map.of(), FlightPicklePlugin.nativeCoreReports());
    }

    @Test
    void reportsSurviveJavaSerializationAsSparkSendsThem() throws Exception {
        NativeCoreReport report = new NativeCoreReport("2", "0.1.0", 1234);
        Object received = FakePluginContext.overTheWire(report);
        assertInstanceOf(NativeCoreReport.class, received);
        assertEquals(report, received);
        assertEquals("core 0.1.0, pid 1234", report.describe());
    }

    @Test
    void withTheRemoteTransportAnExecutorStartsNoServiceAndReadsItsTokenFile(@TempDir Path dir) throws Exception {
        Path token = Files.writeString(dir.resolve("token"), "pool-token\n");
        Map<String, String> remote = Map.of("spark.flightpickle.transport", "remote",
                "spark.flightpickle.executor.uri", "grpc://127.0.0.1:8815",
                "spark.flightpickle.executor.tokenFile", token.toString());
        // Starting a local service reads the executor's cores from context.conf(), which the fake refuses.
        ExecutorPlugin executor = plugin.executorPlugin();
        executor.init(new FakePluginContext("4", driver), remote);
        assertEquals("grpc://127.0.0.1:8815 (with a bearer token)",
                RemoteExecutorPool.endpoint("grpc://127.0.0.1:8815").toString());
        executor.shutdown();
        Map<String, String> missing = new java.util.HashMap<>(remote);
        missing.put("spark.flightpickle.executor.tokenFile", dir.resolve("gone").toString());
        UncheckedIOException failure = assertThrows(UncheckedIOException.class,
                () -> plugin.executorPlugin().init(new FakePluginContext("5", driver), missing));
        assertTrue(failure.getMessage().contains("cannot read spark.flightpickle.executor.tokenFile="),
                failure.getMessage());
    }

    private FakePluginContext startExecutor(String executorId) {
        FakePluginContext context = new FakePluginContext(executorId, driver);
        ExecutorPlugin executor = plugin.executorPlugin();
        executor.init(context, Map.of());
        return context;
    }
}
