package io.flightpickle.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flightpickle.SigningKey;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import org.junit.jupiter.api.Test;

class CommandSigningTest {

    @Test
    void theKeyIsDerivedFromSparksSecretAndIsNotTheSecret() {
        SigningKey key = CommandSigning.keyFor(Map.of("spark.authenticate.secret", "hunter2"));
        assertEquals("spark-auth", key.id());
        String text = new String(key.secret(), StandardCharsets.US_ASCII);
        assertTrue(text.matches("[0-9a-f]{64}"), text);
        assertFalse(text.contains("hunter2"));
        assertEquals(key, CommandSigning.keyFor(Map.of("spark.authenticate.secret", "hunter2")));
        assertNotEquals(key, CommandSigning.keyFor(Map.of("spark.authenticate.secret", "hunter3")));
    }

    @Test
    void theDerivationMatchesTheSharedVector() {
        // The same vector is checked against the Python derivation that Spark Connect clients
        // use (tests/spark/test_signing_key.py); both must change together or not at all.
        assertEquals("50ac1cd1d3d917a522cb55c055f15bd57662d9399ea95aa438e35f9f0b8e6456",
                new String(CommandSigning.derive("shared test vector secret"), StandardCharsets.US_ASCII));
    }

    @Test
    void aConfiguredSecretWinsOverSparks() {
        SigningKey key = CommandSigning.keyFor(Map.of(
                "spark.authenticate.secret", "hunter2", "spark.flightpickle.signing.secret", "ours"));
        assertEquals("flightpickle-conf", key.id());
        assertEquals(new SigningKey("flightpickle-conf", CommandSigning.derive("ours")), key);
    }

    @Test
    void withoutAnySecretTheErrorSaysWhatToSet() {
        IllegalArgumentException error = assertThrows(IllegalArgumentException.class,
                () -> CommandSigning.keyFor(Map.of()));
        assertTrue(error.getMessage().contains("set spark.authenticate.secret"), error.getMessage());
        assertTrue(error.getMessage().contains("spark.flightpickle.signing.secret"), error.getMessage());
    }

    @Test
    void theDriversPythonGetsTheKeyOnlyWhenCommandsAreSigned() {
        try {
            DriverState.start(Map.of());
            assertEquals(null, FlightPicklePlugin.commandSigningKey());
            DriverState.start(Map.of("spark.flightpickle.requireSigned", "true", "spark.authenticate.secret", "x"));
            String[] key = FlightPicklePlugin.commandSigningKey();
            assertEquals("spark-auth", key[0]);
            assertEquals(new String(CommandSigning.derive("x"), StandardCharsets.US_ASCII), key[1]);
        } finally {
            DriverState.stop();
        }
        assertEquals(null, FlightPicklePlugin.commandSigningKey());
    }
}
