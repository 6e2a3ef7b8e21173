package io.flightpickle;

import java.util.Objects;
import java.util.Optional;

/**
 * Reads a Spark UDF command (the bytes of a {@code PythonFunction}) in the native core, without
 * running it. flightpickle's driver hook sends a sealed command: an ordinary pickle that only
 * calls {@code flightpickle.sealing.load_sealed} on a sealed frame. Its frame is verified and the
 * pickle inside inspected. Any other command is inspected as the plain pickle it is.
 */
public final class CommandInspector {

    /**
     * @param sealed the verified header of a sealed command's frame; empty for a plain command
     * @param imports what the pickle that finally gets unpickled imports and calls
     */
    public record Inspection(Optional<EnvelopeHeader> sealed, PickleImports imports) {}

    private CommandInspector() {}

    /**
     * @param key verifies a sealed command's signature; null for none
     * @param requireSignature refuse a sealed command that is not signed with {@code key}
     * @throws NativeException when the frame is refused or a pickle is unreadable
     */
    public static Inspection inspect(byte[] command, SigningKey key, boolean requireSignature) {
        Objects.requireNonNull(command, "command");
        String[] entries = key == null
                ? Native.inspectCommand(command, null, null, requireSignature)
                : Native.inspectCommand(command, key.idBytes(), key.secret(), requireSignature);
        NativeEntries read = NativeEntries.read(entries);
        return new Inspection(read.header(), read.imports());
    }

    /**
     * The sealed frame a sealed command loads (not verified: {@link Envelope#verify} does that),
     * or empty for a command that is not sealed.
     *
     * @throws NativeException when the command is not a readable pickle
     */
    public static Optional<byte[]> sealedFrame(byte[] command) {
        Objects.requireNonNull(command, "command");
        return Optional.ofNullable(Native.sealedFrame(command));
    }

    /**
     * The header (not verified) of the sealed frame in the broadcast file of a command too large
     * for Spark's tasks: PySpark then pickles the command once more, as bytes, into that file and
     * sends tasks only a reference to the broadcast.
     *
     * @throws NativeException naming why, when the file cannot be read or holds no sealed command
     */
    public static EnvelopeHeader broadcastCommandHeader(java.nio.file.Path file) {
        Objects.requireNonNull(file, "file");
        byte[] path = file.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8);
        return NativeEntries.read(Native.broadcastCommandHeader(path)).header().orElseThrow();
    }
}
