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
            case 'H' -> {
                int equals = value.indexOf('=');
                if (equals < 1) {
                    throw unexpected(entry);
                }
                headerFields.put(value.substring(0, equals), value.substring(equals + 1));
            }
            case 'M' -> modules.add(value);
            case 'G' -> globals.add(value);
            case 'C' -> calls.add(value);
            default -> throw unexpected(entry);
        }
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
