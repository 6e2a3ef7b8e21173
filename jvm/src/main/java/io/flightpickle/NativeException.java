package io.flightpickle;

/**
 * A failure in the native core, thrown by the Rust side of {@link Native}: the core refused its
 * input (a tampered frame, an unreadable pickle), or a Rust panic was caught at the boundary.
 *
 * <p>The message is the core's own, after the kind in brackets: {@code [bad_signature] sealed
 * payload's signature does not match key "spark": ...}.
 */
public final class NativeException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final String kind;

    /** Called from Rust with {@code "[kind] message"}. */
    public NativeException(String taggedMessage) {
        super(messageOf(taggedMessage));
        this.kind = kindOf(taggedMessage);
    }

    /**
     * Why the core refused: one of the envelope refusals ({@code not_sealed}, {@code truncated},
     * {@code malformed}, {@code unknown_format_version}, {@code too_large}, {@code
     * signature_missing}, {@code unknown_key}, {@code bad_signature}, {@code decompression}, {@code
     * digest_mismatch}), {@code unreadable_pickle}, {@code invalid_argument}, {@code jni}, or
     * {@code panic}; {@code unknown} when the message carries none.
     */
    public String kind() {
        return kind;
    }

    private static String kindOf(String tagged) {
        int close = tagged == null ? -1 : tagged.indexOf("] ");
        return tagged != null && tagged.startsWith("[") && close > 1 ? tagged.substring(1, close) : "unknown";
    }

    private static String messageOf(String tagged) {
        int close = tagged == null ? -1 : tagged.indexOf("] ");
        return tagged != null && tagged.startsWith("[") && close > 1 ? tagged.substring(close + 2) : tagged;
    }
}
