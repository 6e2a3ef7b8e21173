package io.flightpickle;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The JNI binding on good and bad bytes: every failure is a NativeException, never a crash. */
class NativeBindingTest {

    private static final SigningKey OTHER_KEY =
            new SigningKey("junit", "not the key it was signed with".getBytes(StandardCharsets.UTF_8));

    @Test
    void readsTheHeaderOfAFrameSealedInPython() {
        EnvelopeHeader header = Envelope.read(Fixtures.read("signed.frame"));
        assertTrue(header.python().startsWith("cpython 3."), header.python());
        assertEquals("native", header.target());
        assertEquals(5, header.protocol());
        assertEquals(Optional.of("junit"), header.keyId());
        assertFalse(header.compressed());
        assertEquals(64, header.digest().length());
    }

    @Test
    void verifiesASignedFrameWithItsKey() {
        EnvelopeHeader header = Envelope.verify(Fixtures.read("signed.frame"), Fixtures.JUNIT_KEY, true);
        assertTrue(header.signed());
        EnvelopeHeader compressed = Envelope.verify(Fixtures.read("compressed.frame"), Fixtures.JUNIT_KEY, true);
        assertTrue(compressed.compressed());
        assertTrue(compressed.payloadSize() > compressed.bodySize());
    }

    @Test
    void eachRefusalHasItsKindAndTheCoresMessage() {
        assertRefused("bad_signature", "does not match key \"junit\"",
                () -> Envelope.verify(Fixtures.read("signed.frame"), OTHER_KEY, true));
        assertRefused("signature_missing", "not signed but a signature is required",
                () -> Envelope.verify(Fixtures.read("unsigned.frame"), Fixtures.JUNIT_KEY, true));
        SigningKey anotherId = new SigningKey("other", new byte[] {1});
        assertRefused("unknown_key", "signed with key \"junit\"",
                () -> Envelope.verify(Fixtures.read("signed.frame"), anotherId, false));
        assertRefused("not_sealed", "wrong magic",
                () -> Envelope.read(Fixtures.read("plain.command")));
        assertRefused("unreadable_pickle", "not a readable pickle",
                () -> PickleInspector.inspect(new byte[] {(byte) 0x80, 5, (byte) 0xff}));
    }

    @Test
    void everyTruncationOfAFrameIsRefused() {
        byte[] frame = Fixtures.read("signed.frame");
        for (int length = 0; length < frame.length; length++) {
            byte[] cut = Arrays.copyOf(frame, length);
            NativeException error = assertThrows(NativeException.class,
                    () -> Envelope.verify(cut, Fixtures.JUNIT_KEY, true), "cut at " + length);
            assertTrue(Set.of("truncated", "not_sealed", "malformed").contains(error.kind()),
                    length + ": " + error.kind() + " " + error.getMessage());
        }
    }

    @Test
    void everySingleByteFlipOfASignedFrameIsRefused() {
        byte[] frame = Fixtures.read("signed.frame");
        for (int at = 0; at < frame.length; at++) {
            byte[] tampered = frame.clone();
            tampered[at] ^= 0x01;
            assertThrows(NativeException.class,
                    () -> Envelope.verify(tampered, Fixtures.JUNIT_KEY, true), "flip at " + at);
        }
    }

    @Test
    void randomBytesNeverCrashAnyEntryPoint() {
        Random random = new Random(20261122);
        byte[] frame = Fixtures.read("signed.frame");
        for (int round = 0; round < 3000; round++) {
            byte[] bytes = new byte[random.nextInt(200)];
            random.nextBytes(bytes);
            if (round % 3 == 0 && bytes.length > 8) {
                // Keep a real header start so the parser gets past the magic.
                System.arraycopy(frame, 0, bytes, 0, 8);
            }
            expectResultOrNativeException(() -> Envelope.read(bytes));
            expectResultOrNativeException(() -> Envelope.verify(bytes, Fixtures.JUNIT_KEY, false));
            expectResultOrNativeException(() -> PickleInspector.inspect(bytes));
            expectResultOrNativeException(() -> CommandInspector.inspect(bytes, null, false));
        }
    }

    @Test
    void inspectsAPlainPickleWithoutRunningIt() {
        PickleImports imports = PickleInspector.inspect(Fixtures.read("plain.command"));
        assertTrue(imports.modules().contains("os"), imports.toString());
        assertTrue(imports.modules().contains("pyspark.cloudpickle.cloudpickle"), imports.toString());
        assertTrue(imports.calls().contains("pyspark.cloudpickle.cloudpickle._make_function"), imports.toString());
        assertTrue(imports.globals().contains("pyspark.sql.types.LongType"), imports.toString());
        // The classic hostile pickle is listed, not run.
        byte[] hostile = "cos\nsystem\n(S'echo hi'\ntR.".getBytes(StandardCharsets.ISO_8859_1);
        assertEquals(Set.of("os.system"), PickleInspector.inspect(hostile).calls());
    }

    @Test
    void inspectsTheBodyOfASealedCommandOnceVerified() {
        CommandInspector.Inspection signed =
                CommandInspector.inspect(Fixtures.read("signed.command"), Fixtures.JUNIT_KEY, true);
        assertEquals(Optional.of("junit"), signed.sealed().orElseThrow().keyId());
        assertTrue(signed.imports().modules().contains("os"), signed.toString());
        assertFalse(signed.imports().modules().contains("flightpickle.sealing"), signed.toString());

        CommandInspector.Inspection plain = CommandInspector.inspect(Fixtures.read("plain.command"), null, false);
        assertTrue(plain.sealed().isEmpty());
        assertTrue(plain.imports().modules().contains("os"));
    }

    @Test
    void aSealedCommandIsRefusedWhenUnsignedOrTampered() {
        assertRefused("signature_missing", "not signed",
                () -> CommandInspector.inspect(Fixtures.read("unsigned.command"), Fixtures.JUNIT_KEY, true));
        byte[] command = Fixtures.read("signed.command");
        byte[] tampered = command.clone();
        tampered[tampered.length - 40] ^= 0x01; // inside the frame's body
        NativeException error = assertThrows(NativeException.class,
                () -> CommandInspector.inspect(tampered, Fixtures.JUNIT_KEY, true));
        assertTrue(Set.of("digest_mismatch", "bad_signature").contains(error.kind()), error.getMessage());
    }

    @Test
    void argumentsTheRustSideCannotUseAreRefusedThere() {
        assertRefused("invalid_argument", "null", () -> Native.inspectPickle(null));
        assertRefused("invalid_argument", "pass both or neither",
                () -> Native.verifyEnvelope(Fixtures.read("signed.frame"), new byte[] {'k'}, null, false));
        assertRefused("invalid_argument", "not UTF-8",
                () -> Native.inspectCommand(new byte[0], new byte[] {(byte) 0xff}, new byte[] {1}, false));
    }

    @Test
    void aRustPanicBecomesAnExceptionAndTheLibraryKeepsWorking() {
        assertRefused("panic", "Rust panic in the flightpickle native library: on purpose",
                () -> Native.panicForTesting("on purpose".getBytes(StandardCharsets.UTF_8)));
        assertEquals(BuildInfo.version(), Native.coreVersion());
        assertTrue(Envelope.read(Fixtures.read("signed.frame")).signed());
    }

    @Test
    void keysNeverShowTheirSecret() {
        assertEquals("SigningKey[id=junit, secret=(25 bytes, hidden)]", Fixtures.JUNIT_KEY.toString());
        assertThrows(IllegalArgumentException.class, () -> new SigningKey("", new byte[] {1}));
        assertThrows(IllegalArgumentException.class, () -> new SigningKey("id", new byte[0]));
        assertThrows(IllegalArgumentException.class, () -> new SigningKey("x".repeat(65), new byte[] {1}));
    }

    private static void assertRefused(String kind, String messagePart, Runnable call) {
        NativeException error = assertThrows(NativeException.class, call::run);
        assertEquals(kind, error.kind(), error.getMessage());
        assertTrue(error.getMessage().contains(messagePart), error.getMessage());
    }

    private static void expectResultOrNativeException(Runnable call) {
        try {
            call.run();
        } catch (NativeException expected) {
            assertFalse(expected.kind().equals("panic") || expected.kind().equals("unknown"), expected.getMessage());
        }
    }
}
