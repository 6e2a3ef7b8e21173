package io.flightpickle.spark;

import io.flightpickle.SigningKey;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * What the driver plugin set up for the running application, shared with the SQL extension's
 * check rule and with the driver's Python (through py4j), which Spark instantiates apart from
 * the plugin. One SparkContext at a time per JVM makes one slot enough.
 */
final class DriverState {

    private static volatile DriverState current;

    final FlightPickleConf conf;
    final CommandCheck check;
    /** Null when commands are not signed. */
    private final SigningKey signingKey;

    private DriverState(FlightPickleConf conf, SigningKey signingKey, CommandCheck check) {
        this.conf = conf;
        this.signingKey = signingKey;
        this.check = check;
    }

    /** Validates the confs and makes this the application's state. */
    static DriverState start(Map<String, String> sparkConf) {
        FlightPickleConf conf = FlightPickleConf.from(sparkConf);
        SigningKey key = conf.signsCommands() ? CommandSigning.keyFor(sparkConf) : null;
        DriverState state = new DriverState(conf, key, new CommandCheck(new CommandPolicy(conf, key), new CommandMetrics()));
        current = state;
        return state;
    }

    /** The running application's state; started from {@code sparkConf} if the plugin has not. */
    static DriverState currentOrStart(Map<String, String> sparkConf) {
        DriverState state = current;
        return state != null ? state : start(sparkConf);
    }

    static DriverState current() {
        return current;
    }

    static void stop() {
        current = null;
    }

    /** The key id and key for the driver's Python to sign with, or null when it does not sign. */
    String[] signingKeyForPython() {
        if (signingKey == null) {
            return null;
        }
        return new String[] {signingKey.id(), new String(signingKey.secret(), StandardCharsets.US_ASCII)};
    }
}
