package io.flightpickle.spark;

import com.codahale.metrics.Timer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * The policy as the analyser applies it: one decision per distinct command, remembered, because
 * Spark analyses the same plan again for every DataFrame built on top of it; and metrics.
 */
final class CommandCheck {

    private static final int REMEMBERED_DECISIONS = 4096;

    private final CommandPolicy policy;
    private final CommandMetrics metrics;
    /** Decisions by SHA-256 of the command, least recently used first. Guarded by itself. */
    private final Map<String, Optional<String>> decisions = new LinkedHashMap<>(64, 0.75f, true) {
        private static final long serialVersionUID = 1L;

        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Optional<String>> eldest) {
            return size() > REMEMBERED_DECISIONS;
        }
    };

    CommandCheck(CommandPolicy policy, CommandMetrics metrics) {
        this.policy = policy;
        this.metrics = metrics;
    }

    CommandMetrics metrics() {
        return metrics;
    }

    /** Why the UDF must not run; empty when it may. */
    Optional<String> refusal(String udfName, byte[] command) {
        metrics.checked.inc();
        String digest = sha256(command);
        Optional<String> decision;
        synchronized (decisions) {
            decision = decisions.get(digest);
        }
        if (decision == null) {
            decision = decide(udfName, command);
            synchronized (decisions) {
                decisions.put(digest, decision);
            }
        }
        if (decision.isPresent()) {
            metrics.refused.inc();
        }
        return decision.map(reason -> reason.replace(CommandPolicy.UDF_PLACEHOLDER, udfName));
    }

    private Optional<String> decide(String udfName, byte[] command) {
        metrics.seen.inc();
        metrics.payloadBytes.inc(command.length);
        if (!policy.active()) {
            return Optional.empty();
        }
        Timer.Context timing = metrics.verifyTime.time();
        try {
            // Remembered under the command's digest, so the name is filled in per use.
            return policy.refusal(CommandPolicy.UDF_PLACEHOLDER, command);
        } finally {
            timing.stop();
        }
    }

    private static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is not available in this JVM", e);
        }
    }
}
