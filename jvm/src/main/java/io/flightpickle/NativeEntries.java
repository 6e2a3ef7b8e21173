package io.flightpickle;

import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.TreeSet;

/** Reads the tagged entries that {@link Native}'s methods return into typed results. */
final class NativeEntries {

    private final Map<String, String> headerFields = new HashMap<>();
    private final TreeSet<String> modules = new TreeSet<>();
    private final TreeSet<String> globals = new TreeSet<>();
    private final TreeSet<String> calls = new TreeSet<>();
    private final Map<String, String> streamStats = new HashMap<>();

    private NativeEntries() {}

    static NativeEntries read(String[] entries) {
        NativeEntries read = new NativeEntries();
        for (String entry : entries) {
            read.add(entry);
        }
        return read;
    }

    private void add(String entry) {
        if (entry == null || entry.isEmpty()) {
            throw unexpected(entry);
        }
        String value = entry.substring(1);
        switch (entry.charAt(0)) {
            case 'H' -> putField(headerFields, entry, value);
            case 'S' -> putField(streamStats, entry, value);
            case 'M' -> modules.add(value);
            case 'G' -> globals.add(value);
            case 'C' -> calls.add(value);
            default -> throw unexpected(entry);
        }
    }

    private static void putField(Map<String, String> fields, String entry, String field) {
        int equals = field.indexOf('=');
        if (equals < 1) {
            throw unexpected(entry);
        }
        fields.put(field.substring(0, equals), field.substring(equals + 1));
    }

    /** A stream's stats; empty when there were no such entries. */
    Optional<ExecutorStream.Stats> streamStats() {
        if (streamStats.isEmpty()) {
            return Optional.empty();
        }
        String nanos = streamStats.get("function_nanos");
        String cached = streamStats.get("function_cached");
        if (nanos == null || cached == null) {
            throw unexpected("S" + streamStats);
        }
        return Optional.of(new ExecutorStream.Stats(Long.parseLong(nanos), Boolean.parseBoolean(cached)));
    }

    Optional<EnvelopeHeader> header() {
        return headerFields.isEmpty() ? Optional.empty() : Optional.of(EnvelopeHeader.fromFields(headerFields));
    }

    PickleImports imports() {
        return new PickleImports(modules, globals, calls);
    }

    private static IllegalStateException unexpected(String entry) {
        return new IllegalStateException("the native library returned an entry this jar does not read: "
                + entry + "; are the jar and the library of the same version?");
    }
}
