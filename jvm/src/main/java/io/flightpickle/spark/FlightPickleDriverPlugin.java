package io.flightpickle.spark;

import com.codahale.metrics.Gauge;
import io.flightpickle.BuildInfo;
import io.flightpickle.NativeCore;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.SparkContext;
import org.apache.spark.api.plugin.DriverPlugin;
import org.apache.spark.api.plugin.PluginContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The driver side: loads the native core, validates the {@code spark.flightpickle.*} confs, sets
 * what flightpickle needs (the daemon module, the Python switch, the SQL extension, the executors'
 * malloc arena bound), registers the
 * command metrics, and collects what the executors report.
 */
final class FlightPickleDriverPlugin implements DriverPlugin {

    private static final Logger LOG = LoggerFactory.getLogger(FlightPickleDriverPlugin.class);

    private final ExecutorReports reports;
    private DriverState state;

    FlightPickleDriverPlugin(ExecutorReports reports) {
        this.reports = reports;
    }

    /**
     * Throws for invalid confs or a native core of another version, which fails the
     * SparkContext's start with that message.
     */
    @Override
    public Map<String, String> init(SparkContext sparkContext, PluginContext context) {
        String coreVersion = NativeCore.loadMatchingVersion();
        // Outside Spark (unit tests) there is no SparkContext; its conf is then empty.
        SettableConf conf = sparkContext == null ? SettableConf.of(new HashMap<>()) : SettableConf.of(sparkContext);
        state = DriverState.start(conf.all());
        List<String> set = DriverSetup.apply(conf, state.conf);
        // A previous SparkContext in this JVM that never shut its plugins down must not leave
        // its executors behind in this one's reports.
        reports.clear();
        LOG.info("flightpickle {}: native core {} loaded in the driver; set {}; command checks {}",
                BuildInfo.version(), coreVersion, set.isEmpty() ? "nothing" : String.join(", ", set),
                describeChecks(state.conf));
        return forExecutors(conf.all());
    }

    /** The validated confs the executor plugins act on, passed to their {@code init}. */
    static Map<String, String> forExecutors(Map<String, String> conf) {
        Map<String, String> passed = new HashMap<>();
        for (String key : FlightPickleConf.EXECUTOR_KEYS) {
            if (conf.containsKey(key)) {
                passed.put(key, conf.get(key));
            }
        }
        return Map.copyOf(passed);
    }

    @Override
    public void registerMetrics(String appId, PluginContext context) {
        state.check.metrics().registerIn(context.metricRegistry());
        context.metricRegistry().register("nativeCore.loaded", (Gauge<Integer>) () -> 1);
    }

    /**
     * Answers an executor's message. Spark turns an exception thrown here into a failed reply
     * to the sender, so rejecting a message cannot harm the driver.
     */
    @Override
    public Object receive(Object message) {
        if (message instanceof NativeCoreReport report) {
            return record(report);
        }
        String type = message == null ? "null" : message.getClass().getName();
        LOG.warn("flightpickle: ignoring a message of unknown type {} from an executor", type);
        throw new IllegalArgumentException("the flightpickle " + BuildInfo.version()
                + " driver plugin does not understand messages of type " + type
                + "; do the driver and the executors use the same flightpickle jar?");
    }

    private String record(NativeCoreReport report) {
        reports.record(report);
        LOG.info("flightpickle: executor {} loaded native core {} (pid {})",
                report.executorId(), report.coreVersion(), report.pid());
        if (!report.coreVersion().equals(BuildInfo.version())) {
            LOG.warn("flightpickle: executor {} runs native core {} but the driver runs {}",
                    report.executorId(), report.coreVersion(), BuildInfo.version());
        }
        return "recorded executor " + report.executorId();
    }

    @Override
    public void shutdown() {
        reports.clear();
        DriverState.stop();
    }

    private static String describeChecks(FlightPickleConf conf) {
        if (!conf.checksCommands()) {
            return "off";
        }
        String signed = conf.requireSigned() ? "signed commands required" : "";
        String modules = conf.allowedModules().map(list -> "modules allowed: " + String.join(",", list)).orElse("");
        return String.join("; ", List.of(signed, modules).stream().filter(s -> !s.isEmpty()).toList());
    }
}
