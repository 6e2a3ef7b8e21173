package io.flightpickle;

import java.util.Map;
import java.util.Optional;

/**
 * What a sealed frame's header says about its payload (see {@code src/envelope/FORMAT.md}).
 *
 * @param python the Python that wrote the pickle, e.g. {@code "cpython 3.11"}
 * @param target whose reconstructors the pickle names: {@code native}, {@code cloudpickle} or
 *     {@code pyspark}
 * @param keyId the id of the key the frame is signed with; empty for an unsigned frame
 * @param digest SHA-256 of the pickle, in hex
 */
public record EnvelopeHeader(
        String python,
        String target,
        int protocol,
        String writerVersion,
        boolean compressed,
        long payloadSize,
        long bodySize,
        String digest,
        Optional<String> keyId) {

    /** From the {@code H} entries the native side returns, by field name. */
    static EnvelopeHeader fromFields(Map<String, String> fields) {
        return new EnvelopeHeader(
                field(fields, "python"),
                field(fields, "target"),
                Integer.parseInt(field(fields, "protocol")),
                field(fields, "writer_version"),
                Boolean.parseBoolean(field(fields, "compressed")),
                Long.parseLong(field(fields, "payload_size")),
                Long.parseLong(field(fields, "body_size")),
                field(fields, "digest"),
                Optional.ofNullable(fields.get("key_id")));
    }

    public boolean signed() {
        return keyId.isPresent();
    }

    private static String field(Map<String, String> fields, String name) {
        String value = fields.get(name);
        if (value == null) {
            throw new IllegalStateException("the native library returned a header without " + name
                    + "; are the jar and the library of the same version?");
        }
        return value;
    }
}
