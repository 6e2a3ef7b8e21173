package io.flightpickle.spark;

import java.util.Map;
import org.apache.spark.api.plugin.DriverPlugin;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.apache.spark.api.plugin.SparkPlugin;

/**
 * The flightpickle Spark plugin, enabled with
 * {@code --jars flightpickle-spark.jar --conf spark.plugins=io.flightpickle.spark.FlightPicklePlugin}.
 *
 * <p>It loads the flightpickle native core into the driver and every executor JVM, and fails
 * their start if the core is not of the jar's version. On the driver it validates the
 * {@code spark.flightpickle.*} confs, turns flightpickle on in the driver's Python and the
 * executors' Python daemon, and installs the SQL extension whose check rule applies the command
 * policy ({@code requireSigned}, {@code allowedModules}) to every Python UDF at analysis.
 */
public final class FlightPicklePlugin implements SparkPlugin {

    // Static so that Python code can read it through py4j without a handle on the plugin, which
    // Spark keeps to itself. One SparkContext at a time per JVM makes one registry enough.
    private static final ExecutorReports REPORTS = new ExecutorReports();

    @Override
    public DriverPlugin driverPlugin() {
        return new FlightPickleDriverPlugin(REPORTS);
    }

    @Override
    public ExecutorPlugin executorPlugin() {
        return new FlightPickleExecutorPlugin();
    }

    /**
     * What each executor of the running application reported after loading the native core,
     * by executor id, e.g. {@code "1" -> "core 0.1.0, pid 1234"}. A copy, sorted by executor id;
     * empty in executors and once the SparkContext has stopped.
     */
    public static Map<String, String> nativeCoreReports() {
        return REPORTS.descriptions();
    }

    /**
     * For the driver's Python: the key id and key to sign UDF commands with, or null when the
     * running application does not sign them. The key is derived from a secret in the driver's
     * conf (see {@code CommandSigning}) and handed over here rather than through a conf, so it
     * never shows in the UI or the event log.
     */
    public static String[] commandSigningKey() {
        DriverState state = DriverState.current();
        return state == null ? null : state.signingKeyForPython();
    }
}
