package io.flightpickle.spark;

import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;

/** The executors' reports as the driver has received them; safe to use from any thread. */
final class ExecutorReports {

    private final ConcurrentMap<String, NativeCoreReport> byExecutor = new ConcurrentHashMap<>();

    void record(NativeCoreReport report) {
        byExecutor.put(report.executorId(), report);
    }

    /** A snapshot that the caller owns, from executor id to {@link NativeCoreReport#describe()}. */
    Map<String, String> descriptions() {
        Map<String, String> snapshot = new TreeMap<>();
        byExecutor.forEach((executorId, report) -> snapshot.put(executorId, report.describe()));
        return snapshot;
    }

    void clear() {
        byExecutor.clear();
    }
}
