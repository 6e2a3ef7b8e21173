package io.flightpickle.spark;

import io.flightpickle.SigningKey;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.util.HexFormat;
import java.util.Map;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The key that UDF commands are signed with on the driver and verified with at analysis and in the
 * executors' Python workers.
 *
 * <p>It is derived (HMAC-SHA-256 over a fixed label) from {@link FlightPickleConf#SIGNING_SECRET}
 * when set, else from {@code spark.authenticate.secret}, so the secret itself never leaves the
 * driver JVM and the derived key is used for nothing else. The key is the derivation's hex text
 * (as bytes), because the Python side takes keys as text from the environment.
 */
final class CommandSigning {

    static final String AUTHENTICATE_SECRET = "spark.authenticate.secret";
    static final String CONFIGURED_KEY_ID = "flightpickle-conf";
    static final String SPARK_AUTH_KEY_ID = "spark-auth";
    private static final byte[] LABEL = "flightpickle UDF command signing key, version 1"
            .getBytes(StandardCharsets.US_ASCII);

    private CommandSigning() {}

    /**
     * The signing key for this application.
     *
     * @throws IllegalArgumentException if commands must be signed and neither secret is set
     */
    static SigningKey keyFor(Map<String, String> conf) {
        String configured = conf.get(FlightPickleConf.SIGNING_SECRET);
        if (configured != null && !configured.isEmpty()) {
            return new SigningKey(CONFIGURED_KEY_ID, derive(configured));
        }
        String authenticate = conf.get(AUTHENTICATE_SECRET);
        if (authenticate != null && !authenticate.isEmpty()) {
            return new SigningKey(SPARK_AUTH_KEY_ID, derive(authenticate));
        }
        throw new IllegalArgumentException(FlightPickleConf.REQUIRE_SIGNED + "=true needs a key to sign"
                + " and verify UDF commands with: set " + AUTHENTICATE_SECRET + " (with"
                + " spark.authenticate=true, which also protects Spark's own RPC), or "
                + FlightPickleConf.SIGNING_SECRET + ". The key derived from either never shows in the UI.");
    }

    static byte[] derive(String secret) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(secret.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
            String hex = HexFormat.of().formatHex(mac.doFinal(LABEL));
            return hex.getBytes(StandardCharsets.US_ASCII);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HMAC-SHA256 is not available in this JVM", e);
        }
    }
}
