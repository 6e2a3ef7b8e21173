package io.flightpickle.spark;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * The {@code spark.flightpickle.*} confs, read and validated in one place. Invalid values fail the
 * driver's start with a message that names the conf and says what it accepts, instead of a UDF
 * failing later in a way that hides the cause.
 *
 * @param pythonEnabled the driver's Python pickles commands with flightpickle without any code in
 *     the application (the plugin turns this on unless the user set it)
 * @param target the wire target of the driver's Python: {@code native} or {@code pyspark}
 * @param requireSigned refuse, at analysis, Python UDF commands that are not sealed and signed
 * @param allowedModules refuse commands that import modules outside these; empty for no check
 * @param signingSecretConfigured {@link #SIGNING_SECRET} is set, so commands are signed with a key
 *     derived from it
 * @param transport how Python operators exchange batches with Python: {@code spark} (Spark's own
 *     operators), {@code local} (the SQL extension's operators, through a service on each executor)
 *     or {@code remote} (the same operators, through a remote pool over Arrow Flight)
 * @param executorWorkers the executor service's Python processes; empty for the executor's cores
 * @param executorUri with {@code local}, a service to use instead of starting one per executor
 *     ({@code unix:///path}); with {@code remote}, the pool ({@code grpc://host:port} or
 *     {@code grpc+tls://host:port})
 * @param executorTokenFile a file on the executors holding the remote pool's bearer token
 * @param executorTlsCaFile a PEM file on the executors with the CA certificates of the pool's TLS
 * @param memoryTrimInterval with {@code local} or {@code remote}, how often each executor asks the
 *     C library to give freed native memory back to the operating system; zero for never
 * @param executorMallocArenaMax with {@code local} or {@code remote}, the most malloc arenas glibc
 *     makes in each executor process the cluster manager starts (the driver gives executors
 *     {@code MALLOC_ARENA_MAX} unless the user bounded them); zero to leave glibc's own bound
 */
public record FlightPickleConf(
        boolean pythonEnabled,
        String target,
        boolean requireSigned,
        Optional<List<String>> allowedModules,
        boolean signingSecretConfigured,
        String transport,
        Optional<Integer> executorWorkers,
        Optional<String> executorUri,
        Optional<String> executorTokenFile,
        Optional<String> executorTlsCaFile,
        Duration memoryTrimInterval,
        int executorMallocArenaMax) {

    static final String PREFIX = "spark.flightpickle.";
    public static final String PYTHON_ENABLED = PREFIX + "python.enabled";
    public static final String TARGET = PREFIX + "target";
    public static final String PICKLE_BY_VALUE = PREFIX + "pickleByValue";
    public static final String PICKLE_LOCAL_MODULES = PREFIX + "pickleLocalModules";
    public static final String REQUIRE_SIGNED = PREFIX + "requireSigned";
    public static final String ALLOWED_MODULES = PREFIX + "allowedModules";
    /** Contains "secret", so Spark's default spark.redaction.regex hides it in the UI and logs. */
    public static final String SIGNING_SECRET = PREFIX + "signing.secret";
    public static final String TRANSPORT = PREFIX + "transport";
    public static final String EXECUTOR_WORKERS = PREFIX + "executor.workers";
    public static final String EXECUTOR_URI = PREFIX + "executor.uri";
    /** A path, never the token itself: confs show in the Spark UI. */
    public static final String EXECUTOR_TOKEN_FILE = PREFIX + "executor.tokenFile";
    public static final String EXECUTOR_TLS_CA_FILE = PREFIX + "executor.tlsCaFile";
    public static final String MEMORY_TRIM_INTERVAL = PREFIX + "executor.memoryTrimInterval";
    static final Duration DEFAULT_MEMORY_TRIM_INTERVAL = Duration.ofSeconds(60);
    public static final String EXECUTOR_MALLOC_ARENA_MAX = PREFIX + "executor.mallocArenaMax";
    /** Two arenas kept the benchmark's executors flat over 10 minutes; glibc's own 8 per core did not. */
    static final int DEFAULT_EXECUTOR_MALLOC_ARENA_MAX = 2;
    /** Where executors take the remote pool's bearer token from when no token file is set. */
    public static final String TOKEN_VARIABLE = "FLIGHTPICKLE_EXECUTOR_TOKEN";

    static final Set<String> KNOWN = new TreeSet<>(List.of(
            PYTHON_ENABLED, TARGET, PICKLE_BY_VALUE, PICKLE_LOCAL_MODULES, REQUIRE_SIGNED, ALLOWED_MODULES,
            SIGNING_SECRET, TRANSPORT, EXECUTOR_WORKERS, EXECUTOR_URI, EXECUTOR_TOKEN_FILE,
            EXECUTOR_TLS_CA_FILE, MEMORY_TRIM_INTERVAL, EXECUTOR_MALLOC_ARENA_MAX));
    static final List<String> TARGETS = List.of("native", "pyspark");
    static final List<String> TRANSPORTS = List.of("spark", "local", "remote");
    /** What the executor plugins need; the driver passes these to them. */
    static final List<String> EXECUTOR_KEYS = List.of(TRANSPORT, EXECUTOR_WORKERS, EXECUTOR_URI, EXECUTOR_TOKEN_FILE,
            EXECUTOR_TLS_CA_FILE, MEMORY_TRIM_INTERVAL);
    /** A host name or IPv4 address, or an IPv6 address in brackets, then a port. */
    private static final Pattern POOL_URI =
            Pattern.compile("grpc(\\+tls)?://([^/:\\s\\[\\]]+|\\[[0-9A-Fa-f:.]+\\]):[0-9]{1,5}");
    /**
     * A Spark time string: a whole number and an optional unit. Parsed here rather than with
     * Spark's own helper, whose class needs Spark's logging set up before it can load. At most
     * nine digits, so that any value fits in milliseconds.
     */
    private static final Pattern TIME = Pattern.compile("([0-9]{1,9})(us|ms|s|m|min|h|d)?");
    private static final Map<String, Duration> TIME_UNITS = Map.of("us", Duration.ofNanos(1000), "ms",
            Duration.ofMillis(1), "s", Duration.ofSeconds(1), "m", Duration.ofMinutes(1), "min",
            Duration.ofMinutes(1), "h", Duration.ofHours(1), "d", Duration.ofDays(1));
    private static final Pattern MODULE_NAME = Pattern.compile("[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)*");

    /**
     * Reads and validates every {@code spark.flightpickle.*} entry of {@code conf}.
     *
     * @throws IllegalArgumentException listing every invalid entry, each with what it accepts
     */
    public static FlightPickleConf from(Map<String, String> conf) {
        List<String> problems = new ArrayList<>();
        conf.keySet().stream()
                .filter(key -> key.startsWith(PREFIX) && !KNOWN.contains(key))
                .sorted()
                .forEach(key -> problems.add(key + " is not a flightpickle conf" + suggestion(key)
                        + "; the known ones are " + String.join(", ", KNOWN)));
        boolean pythonEnabled = bool(conf, PYTHON_ENABLED, true, problems);
        String target = conf.getOrDefault(TARGET, "native").trim();
        if (!TARGETS.contains(target)) {
            problems.add(TARGET + "=" + target + " is not a target; use one of " + String.join(", ", TARGETS));
        }
        modules(conf, PICKLE_BY_VALUE, problems);
        bool(conf, PICKLE_LOCAL_MODULES, false, problems);
        boolean requireSigned = bool(conf, REQUIRE_SIGNED, false, problems);
        Optional<List<String>> allowed = conf.containsKey(ALLOWED_MODULES)
                ? Optional.of(modules(conf, ALLOWED_MODULES, problems))
                : Optional.empty();
        boolean secretConfigured = conf.containsKey(SIGNING_SECRET);
        if (secretConfigured && conf.get(SIGNING_SECRET).isEmpty()) {
            problems.add(SIGNING_SECRET + " is empty; set a secret, or remove it to derive the key from"
                    + " spark.authenticate.secret");
        }
        if ((requireSigned || secretConfigured) && target.equals("pyspark")) {
            problems.add(TARGET + "=pyspark writes plain pickles, which cannot be signed; with "
                    + REQUIRE_SIGNED + " or " + SIGNING_SECRET + " use the native target");
        }
        String transport = transport(conf, target, problems);
        Optional<Integer> workers = positiveInt(conf, EXECUTOR_WORKERS, problems);
        Optional<String> uri = Optional.ofNullable(conf.get(EXECUTOR_URI)).map(String::trim);
        Optional<String> tokenFile = Optional.ofNullable(conf.get(EXECUTOR_TOKEN_FILE)).map(String::trim);
        Optional<String> tlsCaFile = Optional.ofNullable(conf.get(EXECUTOR_TLS_CA_FILE)).map(String::trim);
        executorProblems(transport, uri, tokenFile, tlsCaFile).forEach(problems::add);
        Duration trimInterval = interval(conf, MEMORY_TRIM_INTERVAL, DEFAULT_MEMORY_TRIM_INTERVAL, problems);
        int arenaMax = arenaMax(conf, problems);
        if (!problems.isEmpty()) {
            throw new IllegalArgumentException("invalid flightpickle configuration:\n  - "
                    + String.join("\n  - ", problems));
        }
        return new FlightPickleConf(pythonEnabled, target, requireSigned, allowed, secretConfigured, transport,
                workers, uri, tokenFile, tlsCaFile, trimInterval, arenaMax);
    }

    /** What is wrong with where the executors' operators stream to, each with what to do. */
    private static List<String> executorProblems(String transport, Optional<String> uri, Optional<String> tokenFile,
            Optional<String> tlsCaFile) {
        return transport.equals("remote") ? remotePoolProblems(uri, tlsCaFile)
                : localServiceProblems(uri, tokenFile, tlsCaFile);
    }

    private static List<String> remotePoolProblems(Optional<String> uri, Optional<String> tlsCaFile) {
        List<String> problems = new ArrayList<>();
        if (uri.isEmpty()) {
            problems.add(TRANSPORT + "=remote needs " + EXECUTOR_URI + "=grpc://host:port (or grpc+tls://) of"
                    + " the pool that `python -m flightpickle.executor serve --listen grpc://...` runs");
        }
        uri.flatMap(FlightPickleConf::poolUriProblem).ifPresent(problems::add);
        boolean tls = uri.filter(value -> value.startsWith("grpc+tls://")).isPresent();
        if (tls && tlsCaFile.isEmpty()) {
            problems.add(EXECUTOR_URI + "=" + uri.get() + " uses TLS: set " + EXECUTOR_TLS_CA_FILE
                    + " to a PEM file, on the executors, with the CA certificates that sign the pool's");
        }
        if (!tls && tlsCaFile.isPresent()) {
            problems.add(EXECUTOR_TLS_CA_FILE + " is only for a grpc+tls:// " + EXECUTOR_URI);
        }
        return problems;
    }

    private static List<String> localServiceProblems(Optional<String> uri, Optional<String> tokenFile,
            Optional<String> tlsCaFile) {
        List<String> problems = new ArrayList<>();
        uri.filter(value -> value.startsWith("grpc")).ifPresent(value -> problems.add(EXECUTOR_URI + "=" + value
                + " is a remote pool: set " + TRANSPORT + "=remote to stream to it"));
        uri.filter(value -> !value.startsWith("grpc") && !value.startsWith("unix:///")).ifPresent(value ->
                problems.add(EXECUTOR_URI + "=" + value + " is not a Unix socket URI; use unix:///absolute/path"
                        + " (or grpc://host:port with " + TRANSPORT + "=remote)"));
        tokenFile.ifPresent(file -> problems.add(EXECUTOR_TOKEN_FILE + " is only used with " + TRANSPORT + "=remote"));
        tlsCaFile.ifPresent(file -> problems.add(EXECUTOR_TLS_CA_FILE + " is only used with " + TRANSPORT + "=remote"));
        return problems;
    }

    /**
     * Why {@code uri} is not a remote pool's address ({@code grpc://host:port} or
     * {@code grpc+tls://host:port}), or empty when it is one.
     */
    public static Optional<String> poolUriProblem(String uri) {
        if (POOL_URI.matcher(uri).matches()) {
            int port = Integer.parseInt(uri.substring(uri.lastIndexOf(':') + 1));
            if (port >= 1 && port <= 65535) {
                return Optional.empty();
            }
        }
        return Optional.of(EXECUTOR_URI + "=" + uri + " is not a pool address; use grpc://host:port or"
                + " grpc+tls://host:port (port 1 to 65535, no path)");
    }

    /** Commands are signed when they must be, or when the user gave a secret to sign with. */
    public boolean signsCommands() {
        return requireSigned || signingSecretConfigured;
    }

    /** Some check at analysis is on. */
    public boolean checksCommands() {
        return requireSigned || allowedModules.isPresent();
    }

    /** The Python operators are replaced: {@code spark.flightpickle.transport=local} or {@code remote}. */
    public boolean replacesPythonOperators() {
        return replacesPythonOperators(transport);
    }

    /** Whether a transport is one that flightpickle's operators serve. */
    public static boolean replacesPythonOperators(String transport) {
        return transport.equals("local") || transport.equals("remote");
    }

    /**
     * Whether executors should trim their native heap now and then: their JVMs move Arrow batches
     * through native memory for flightpickle's operators, and the trim is not turned off.
     */
    public boolean trimsExecutorMemory() {
        return replacesPythonOperators() && !memoryTrimInterval.isZero();
    }

    /**
     * Whether the driver should bound the malloc arenas of the executors it has started: their
     * JVMs move Arrow batches through native memory for flightpickle's operators, and the bound
     * is not turned off.
     */
    public boolean boundsExecutorArenas() {
        return replacesPythonOperators() && executorMallocArenaMax > 0;
    }

    /** Tasks stream to a remote pool: {@code spark.flightpickle.transport=remote}. */
    public boolean streamsToRemotePool() {
        return transport.equals("remote");
    }

    private static String transport(Map<String, String> conf, String target, List<String> problems) {
        String transport = conf.getOrDefault(TRANSPORT, "spark").trim();
        if (!TRANSPORTS.contains(transport)) {
            problems.add(TRANSPORT + "=" + transport + " is not a transport; use one of "
                    + String.join(", ", TRANSPORTS));
        } else if (replacesPythonOperators(transport) && target.equals("pyspark")) {
            problems.add(TRANSPORT + "=" + transport + " needs sealed commands, which " + TARGET
                    + "=pyspark does not write");
        }
        return transport;
    }

    /** A Spark time string ({@code 30s}, {@code 5min}, {@code 500ms}; a bare number is milliseconds), not negative. */
    private static Duration interval(Map<String, String> conf, String key, Duration fallback, List<String> problems) {
        String value = conf.get(key);
        if (value == null) {
            return fallback;
        }
        Matcher time = TIME.matcher(value.trim().toLowerCase(Locale.ROOT));
        if (time.matches()) {
            Duration unit = TIME_UNITS.get(time.group(2) == null ? "ms" : time.group(2));
            return unit.multipliedBy(Long.parseLong(time.group(1)));
        }
        problems.add(key + "=" + value + " is not a time interval; use a Spark time such as 60s, 5min or 500ms,"
                + " or 0 to turn it off");
        return fallback;
    }

    /** glibc takes any positive count; zero here means "do not set it". */
    private static int arenaMax(Map<String, String> conf, List<String> problems) {
        String value = conf.get(EXECUTOR_MALLOC_ARENA_MAX);
        if (value == null) {
            return DEFAULT_EXECUTOR_MALLOC_ARENA_MAX;
        }
        try {
            int parsed = Integer.parseInt(value.trim());
            if (parsed >= 0) {
                return parsed;
            }
        } catch (NumberFormatException notANumber) {
            // reported below
        }
        problems.add(EXECUTOR_MALLOC_ARENA_MAX + "=" + value + " is not a count of malloc arenas; use a whole number"
                + " such as 2, or 0 to leave glibc's own bound (8 per core)");
        return DEFAULT_EXECUTOR_MALLOC_ARENA_MAX;
    }

    private static Optional<Integer> positiveInt(Map<String, String> conf, String key, List<String> problems) {
        String value = conf.get(key);
        if (value == null) {
            return Optional.empty();
        }
        try {
            int parsed = Integer.parseInt(value.trim());
            if (parsed > 0) {
                return Optional.of(parsed);
            }
        } catch (NumberFormatException notANumber) {
            // reported below
        }
        problems.add(key + "=" + value + " is not a positive whole number");
        return Optional.empty();
    }

    private static boolean bool(Map<String, String> conf, String key, boolean fallback, List<String> problems) {
        String value = conf.get(key);
        if (value == null) {
            return fallback;
        }
        switch (value.trim().toLowerCase(Locale.ROOT)) {
            case "true":
                return true;
            case "false":
                return false;
            default:
                problems.add(key + "=" + value + " is not a boolean; use true or false");
                return fallback;
        }
    }

    private static List<String> modules(Map<String, String> conf, String key, List<String> problems) {
        String value = conf.getOrDefault(key, "");
        List<String> names = Arrays.stream(value.split(","))
                .map(String::trim)
                .filter(name -> !name.isEmpty())
                .collect(Collectors.toList());
        for (String name : names) {
            if (!MODULE_NAME.matcher(name).matches()) {
                problems.add(key + " lists \"" + name + "\", which is not a Python module name"
                        + " (dotted identifiers, comma-separated, e.g. numpy,my_package.helpers)");
            }
        }
        return List.copyOf(names);
    }

    /** " (did you mean X?)" for a key one letter-case or a few letters away from a known one. */
    private static String suggestion(String key) {
        return KNOWN.stream()
                .filter(known -> known.equalsIgnoreCase(key) || editDistance(known, key) <= 2)
                .findFirst()
                .map(known -> " (did you mean " + known + "?)")
                .orElse("");
    }

    private static int editDistance(String a, String b) {
        int[] previous = new int[b.length() + 1];
        int[] current = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) {
            previous[j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            current[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int substitution = previous[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1);
                current[j] = Math.min(substitution, Math.min(previous[j], current[j - 1]) + 1);
            }
            int[] swap = previous;
            previous = current;
            current = swap;
        }
        return previous[b.length()];
    }
}
