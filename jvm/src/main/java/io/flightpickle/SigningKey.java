package io.flightpickle;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Objects;

/**
 * A key that sealed payloads are signed and verified with (HMAC-SHA-256), and the id frames name
 * it by. {@link #toString()} never shows the secret, so a key can appear in logs and errors.
 */
public final class SigningKey {

    /** Frames allow key ids of 1 to 64 bytes of UTF-8. */
    public static final int MAX_ID_BYTES = 64;

    private final String id;
    private final byte[] secret;

    public SigningKey(String id, byte[] secret) {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(secret, "secret");
        int idBytes = id.getBytes(StandardCharsets.UTF_8).length;
        if (idBytes == 0 || idBytes > MAX_ID_BYTES) {
            throw new IllegalArgumentException("a signing key id must be 1 to " + MAX_ID_BYTES
                    + " bytes of UTF-8, got " + idBytes + " bytes");
        }
        if (secret.length == 0) {
            throw new IllegalArgumentException("signing key " + id + " is empty");
        }
        this.id = id;
        this.secret = secret.clone();
    }

    public String id() {
        return id;
    }

    public byte[] secret() {
        return secret.clone();
    }

    byte[] idBytes() {
        return id.getBytes(StandardCharsets.UTF_8);
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof SigningKey key && key.id.equals(id) && Arrays.equals(key.secret, secret);
    }

    @Override
    public int hashCode() {
        return id.hashCode();
    }

    @Override
    public String toString() {
        return "SigningKey[id=" + id + ", secret=(" + secret.length + " bytes, hidden)]";
    }
}
