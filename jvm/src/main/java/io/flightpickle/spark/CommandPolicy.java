package io.flightpickle.spark;

import io.flightpickle.CommandInspector;
import io.flightpickle.NativeException;
import io.flightpickle.SigningKey;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

/**
 * Decides whether a Python UDF command may run, from its bytes alone, without running anything:
 * the native core verifies a sealed command's frame and lists what its pickle imports.
 *
 * <p>{@code allowedModules} judges what loading the command imports (the modules its pickle names,
 * including modules that functions use as globals). It cannot see what a function's code imports
 * when it runs ({@code import os} inside its body), so it keeps unexpected dependencies and crude
 * payloads out; it is not a sandbox.
 */
final class CommandPolicy {

    /** Modules every command needs: the loaders of flightpickle and PySpark, and pickle's own. */
    static final List<String> ALWAYS_ALLOWED = List.of("flightpickle", "pyspark", "builtins", "copyreg");
    /**
     * Builtins that evaluate code or import or reach any attribute: allowing {@code builtins}
     * implicitly must not allow a pickle that calls these, since they bypass the module list.
     */
    static final Set<String> UNSAFE_BUILTINS = Set.of("builtins.eval", "builtins.exec", "builtins.compile",
            "builtins.__import__", "builtins.getattr", "builtins.setattr", "builtins.delattr", "builtins.open",
            "builtins.breakpoint", "builtins.input", "builtins.globals", "builtins.vars");
    /** A command over spark.broadcast.UDFCompressionThreshold is this call; the real one is elsewhere. */
    static final String BROADCAST_LOADER = "pyspark.core.broadcast._from_id";
    /** Stands for the UDF's name in refusals that are remembered for every UDF of that command. */
    static final String UDF_PLACEHOLDER = "\u0000udf\u0000";

    private final FlightPickleConf conf;
    private final SigningKey key;

    /** @param key verifies signatures; null when commands are not signed */
    CommandPolicy(FlightPickleConf conf, SigningKey key) {
        this.conf = conf;
        this.key = key;
        if (conf.requireSigned() && key == null) {
            throw new IllegalArgumentException("requireSigned needs a signing key");
        }
    }

    boolean active() {
        return conf.checksCommands();
    }

    /** Why the UDF named {@code udfName} must not run; empty when it may. */
    Optional<String> refusal(String udfName, byte[] command) {
        if (!active()) {
            return Optional.empty();
        }
        CommandInspector.Inspection inspection;
        try {
            inspection = CommandInspector.inspect(command, key, conf.requireSigned());
        } catch (NativeException e) {
            return refuse(udfName, "its command was refused: " + e.getMessage());
        }
        boolean broadcast = inspection.imports().calls().contains(BROADCAST_LOADER);
        if (conf.requireSigned() && inspection.sealed().isEmpty()) {
            return refuse(udfName, "its command is not a sealed, signed flightpickle payload, and "
                    + FlightPickleConf.REQUIRE_SIGNED + "=true" + (broadcast ? broadcastHint() : ". Pickle"
                    + " it with flightpickle in the driver's Python: the plugin enables that for PySpark"
                    + " drivers unless " + FlightPickleConf.PYTHON_ENABLED + "=false"));
        }
        if (conf.allowedModules().isPresent()) {
            if (broadcast) {
                return refuse(udfName, "its command travels as a broadcast, whose content the "
                        + FlightPickleConf.ALLOWED_MODULES + " check cannot read" + broadcastHint());
            }
            return disallowed(udfName, inspection);
        }
        return Optional.empty();
    }

    private Optional<String> disallowed(String udfName, CommandInspector.Inspection inspection) {
        List<String> allowed = conf.allowedModules().orElseThrow();
        TreeSet<String> outside = new TreeSet<>();
        for (String module : inspection.imports().modules()) {
            if (!covered(module, allowed) && !covered(module, ALWAYS_ALLOWED)) {
                outside.add(module);
            }
        }
        if (!covered("builtins", allowed)) {
            inspection.imports().calls().stream().filter(UNSAFE_BUILTINS::contains).forEach(outside::add);
        }
        if (outside.isEmpty()) {
            return Optional.empty();
        }
        return refuse(udfName, "its command imports " + String.join(", ", outside) + ", outside "
                + FlightPickleConf.ALLOWED_MODULES + " (" + (allowed.isEmpty() ? "empty" : String.join(",", allowed))
                + "; always allowed: " + String.join(", ", ALWAYS_ALLOWED) + " except "
                + "builtins that run code or reach attributes). Add what the UDF needs to the list");
    }

    /** {@code module} is one of {@code names} or inside one of those packages. */
    static boolean covered(String module, List<String> names) {
        return names.stream().anyMatch(name -> module.equals(name) || module.startsWith(name + "."));
    }

    private static String broadcastHint() {
        return ". Commands larger than spark.broadcast.UDFCompressionThreshold (1 MiB by default) travel"
                + " as broadcasts that are not checked here; flightpickle's driver hook keeps commands"
                + " inline while this check is on, so this one was pickled by something else";
    }

    private static Optional<String> refuse(String udfName, String why) {
        return Optional.of("flightpickle refused the Python UDF '" + udfName + "': " + why + ".");
    }
}
