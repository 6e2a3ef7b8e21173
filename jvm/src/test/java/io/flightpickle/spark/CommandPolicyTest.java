package io.flightpickle.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flightpickle.Fixtures;
import io.flightpickle.SigningKey;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** The policy on commands written by the real Python driver hook (see the fixtures). */
class CommandPolicyTest {

    private static final Map<String, String> REQUIRE_SIGNED = Map.of("spark.flightpickle.requireSigned", "true");

    @Test
    void offByDefault() {
        CommandPolicy policy = policy(Map.of(), null);
        assertEquals(Optional.empty(), policy.refusal("f", "not even a pickle".getBytes(StandardCharsets.UTF_8)));
    }

    @Test
    void aSignedCommandPassesRequireSigned() {
        assertEquals(Optional.empty(), policy(REQUIRE_SIGNED, Fixtures.JUNIT_KEY)
                .refusal("pid_plus", Fixtures.read("signed.command")));
    }

    @Test
    void unsignedAndPlainCommandsAreRefusedNamingTheUdf() {
        CommandPolicy policy = policy(REQUIRE_SIGNED, Fixtures.JUNIT_KEY);
        String unsigned = policy.refusal("pid_plus", Fixtures.read("unsigned.command")).orElseThrow();
        assertTrue(unsigned.startsWith("flightpickle refused the Python UDF 'pid_plus': its command was refused:"
                + " sealed payload is not signed but a signature is required"), unsigned);
        String plain = policy.refusal("<lambda>", Fixtures.read("plain.command")).orElseThrow();
        assertTrue(plain.startsWith("flightpickle refused the Python UDF '<lambda>': its command is not a sealed,"
                + " signed flightpickle payload, and spark.flightpickle.requireSigned=true"), plain);
    }

    @Test
    void aCommandSignedWithAnotherKeyIsRefused() {
        SigningKey other = new SigningKey("junit", "someone else's".getBytes(StandardCharsets.UTF_8));
        String refusal = policy(REQUIRE_SIGNED, other).refusal("f", Fixtures.read("signed.command")).orElseThrow();
        assertTrue(refusal.contains("signature does not match key \"junit\""), refusal);
    }

    @Test
    void modulesOutsideTheAllowListAreRefused() {
        Map<String, String> numpyOnly = Map.of("spark.flightpickle.allowedModules", "numpy");
        for (String fixture : List.of("signed.command", "unsigned.command", "plain.command")) {
            String refusal = policy(numpyOnly, null).refusal("pid_plus", Fixtures.read(fixture)).orElseThrow();
            assertTrue(refusal.contains("its command imports os, outside spark.flightpickle.allowedModules (numpy;"),
                    fixture + ": " + refusal);
        }
        Map<String, String> withOs = Map.of("spark.flightpickle.allowedModules", "numpy,os");
        assertEquals(Optional.empty(), policy(withOs, null).refusal("pid_plus", Fixtures.read("signed.command")));
    }

    @Test
    void packagesCoverTheirSubmodulesOnly() {
        assertTrue(CommandPolicy.covered("os.path", List.of("os")));
        assertTrue(CommandPolicy.covered("os", List.of("os")));
        assertEquals(false, CommandPolicy.covered("osmosis", List.of("os")));
        assertEquals(false, CommandPolicy.covered("os", List.of("os.path")));
    }

    @Test
    void builtinsThatRunCodeAreRefusedUnlessBuiltinsIsListed() {
        byte[] eval = "cbuiltins\neval\n(S'1'\ntR.".getBytes(StandardCharsets.ISO_8859_1);
        String refusal = policy(Map.of("spark.flightpickle.allowedModules", "numpy"), null)
                .refusal("sneaky", eval).orElseThrow();
        assertTrue(refusal.contains("imports builtins.eval, outside"), refusal);
        assertEquals(Optional.empty(), policy(Map.of("spark.flightpickle.allowedModules", "builtins"), null)
                .refusal("sneaky", eval));
    }

    @Test
    void aBroadcastCommandCannotBeCheckedAndSaysWhy() {
        byte[] broadcast = "cpyspark.core.broadcast\n_from_id\n(I3\ntR.".getBytes(StandardCharsets.ISO_8859_1);
        String modules = policy(Map.of("spark.flightpickle.allowedModules", "numpy"), null)
                .refusal("big", broadcast).orElseThrow();
        assertTrue(modules.contains("travels as a broadcast"), modules);
        assertTrue(modules.contains("spark.broadcast.UDFCompressionThreshold"), modules);
    }

    @Test
    void garbageIsRefusedWhenAPolicyIsOn() {
        String refusal = policy(Map.of("spark.flightpickle.allowedModules", "numpy"), null)
                .refusal("f", new byte[] {1, 2, 3}).orElseThrow();
        assertTrue(refusal.contains("its command was refused: the command is not a readable pickle"), refusal);
    }

    @Test
    void theCheckRemembersDecisionsAndCountsForTheMetrics() {
        CommandMetrics metrics = new CommandMetrics();
        CommandCheck check = new CommandCheck(policy(REQUIRE_SIGNED, Fixtures.JUNIT_KEY), metrics);
        byte[] signed = Fixtures.read("signed.command");
        byte[] plain = Fixtures.read("plain.command");
        assertEquals(Optional.empty(), check.refusal("a", signed));
        assertEquals(Optional.empty(), check.refusal("a", signed));
        assertTrue(check.refusal("first", plain).orElseThrow().contains("UDF 'first'"));
        // The remembered refusal names the UDF it is about now.
        assertTrue(check.refusal("second", plain).orElseThrow().contains("UDF 'second'"));
        assertEquals(2, metrics.seen.getCount());
        assertEquals(4, metrics.checked.getCount());
        assertEquals(signed.length + plain.length, metrics.payloadBytes.getCount());
        assertEquals(2, metrics.refused.getCount());
        assertEquals(2, metrics.verifyTime.getCount());
    }

    private static CommandPolicy policy(Map<String, String> conf, SigningKey key) {
        return new CommandPolicy(FlightPickleConf.from(conf), key);
    }
}
