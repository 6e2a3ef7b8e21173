package io.flightpickle.spark;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The confs the driver plugin sets so that one {@code spark.plugins} line turns flightpickle on.
 * A value the user set is never replaced.
 */
final class DriverSetup {

    static final String DAEMON_MODULE = "spark.python.daemon.module";
    static final String FLIGHTPICKLE_DAEMON = "flightpickle.spark.daemon";
    static final String SQL_EXTENSIONS = "spark.sql.extensions";
    static final String EXTENSIONS_CLASS = FlightPickleExtensions.class.getName();

    private DriverSetup() {}

    /**
     * Sets what is missing in {@code conf}, the SparkContext's own, which executors and sessions
     * read after the plugins start.
     *
     * @return each {@code key=value} set, for the log
     */
    static List<String> apply(SettableConf conf, FlightPickleConf settings) {
        List<String> set = new ArrayList<>();
        // Stock PySpark executors (the pyspark target) may not have flightpickle to run the daemon.
        if (settings.target().equals("native")) {
            setIfMissing(conf, DAEMON_MODULE, FLIGHTPICKLE_DAEMON, set);
        }
        setIfMissing(conf, FlightPickleConf.PYTHON_ENABLED, "true", set);
        String extensions = conf.get(SQL_EXTENSIONS, "").trim();
        boolean listed = Arrays.stream(extensions.split(",")).map(String::trim).anyMatch(EXTENSIONS_CLASS::equals);
        if (!listed) {
            String value = extensions.isEmpty() ? EXTENSIONS_CLASS : extensions + "," + EXTENSIONS_CLASS;
            conf.set(SQL_EXTENSIONS, value);
            set.add(SQL_EXTENSIONS + "=" + value);
        }
        boundExecutorArenas(conf, settings, set);
        return set;
    }

    /**
     * Gives executors {@code MALLOC_ARENA_MAX} when flightpickle's operators run and the user
     * bounded the arenas neither that way nor with {@code GLIBC_TUNABLES}. glibc reads it only
     * when a process starts, so the executor plugin is too late to set it for its own JVM; the
     * driver's init runs before the cluster manager starts any executor.
     */
    private static void boundExecutorArenas(SettableConf conf, FlightPickleConf settings, List<String> set) {
        if (settings.boundsExecutorArenas() && !MemoryTrimmer.boundsArenas(conf.executorEnvironment())) {
            String value = Integer.toString(settings.executorMallocArenaMax());
            conf.setExecutorEnvironment(MemoryTrimmer.ARENA_MAX, value);
            set.add(SettableConf.EXECUTOR_ENV_PREFIX + MemoryTrimmer.ARENA_MAX + "=" + value);
        }
    }

    private static void setIfMissing(SettableConf conf, String key, String value, List<String> set) {
        if (!conf.contains(key)) {
            conf.set(key, value);
            set.add(key + "=" + value);
        }
    }
}
