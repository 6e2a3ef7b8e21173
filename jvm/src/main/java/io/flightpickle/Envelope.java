package io.flightpickle;

import java.util.Objects;

/** Sealed payloads, read and verified by the native core (format: {@code src/envelope/FORMAT.md}). */
public final class Envelope {

    private Envelope() {}

    /**
     * A frame's header, without verifying its signature or digest.
     *
     * @throws NativeException if the bytes are not a well-formed frame
     */
    public static EnvelopeHeader read(byte[] frame) {
        Objects.requireNonNull(frame, "frame");
        return NativeEntries.read(Native.readEnvelope(frame)).header().orElseThrow();
    }

    /**
     * Verifies a frame: its signature with {@code key} (null for none; with no key, a signed frame
     * is checked by its digest only, unless a signature is required, which then fails), then its
     * digest. The Python version is not checked: the JVM unpickles nothing.
     *
     * @throws NativeException naming the refusal ({@link NativeException#kind()})
     */
    public static EnvelopeHeader verify(byte[] frame, SigningKey key, boolean requireSignature) {
        Objects.requireNonNull(frame, "frame");
        String[] entries = key == null
                ? Native.verifyEnvelope(frame, null, null, requireSignature)
                : Native.verifyEnvelope(frame, key.idBytes(), key.secret(), requireSignature);
        return NativeEntries.read(entries).header().orElseThrow();
    }
}
