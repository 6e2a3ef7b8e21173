package io.flightpickle.spark;

import io.flightpickle.ExecutorStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;

/**
 * The credentials an executor presents to a remote pool of Python executors
 * ({@code spark.flightpickle.transport=remote}): its bearer token, read from
 * {@code spark.flightpickle.executor.tokenFile} or the executor's {@code FLIGHTPICKLE_EXECUTOR_TOKEN},
 * and the CA certificates of the pool's TLS, read from {@code spark.flightpickle.executor.tlsCaFile}.
 *
 * <p>The executor plugin reads them once, when the executor starts, so that a missing file fails
 * the executor's start with its name rather than every task; they stay in this JVM, never in a
 * conf, a plan or a task. Which pool a query streams to is the session's
 * {@code spark.flightpickle.executor.uri}, carried by the query's operators.
 */
public final class RemoteExecutorPool {

    private static volatile Credentials credentials;

    private RemoteExecutorPool() {}

    /** A bearer token and TLS CA certificates, either absent; never printed. */
    record Credentials(byte[] token, byte[] tlsCa) {
        @Override
        public String toString() {
            return "Credentials(token " + (token == null ? "absent" : "set") + ", TLS CA "
                    + (tlsCa == null ? "absent" : "set") + ")";
        }
    }

    /**
     * Reads this executor's credentials for the pool.
     *
     * @param environment the executor's environment, where the token may be instead of a file
     * @throws IllegalStateException naming the file that cannot be read, or an empty token
     */
    static void configure(FlightPickleConf conf, Map<String, String> environment) {
        byte[] token = conf.executorTokenFile()
                .map(file -> read(file, FlightPickleConf.EXECUTOR_TOKEN_FILE))
                .or(() -> Optional.ofNullable(environment.get(FlightPickleConf.TOKEN_VARIABLE)))
                .map(String::strip)
                .map(RemoteExecutorPool::nonEmpty)
                .map(text -> text.getBytes(StandardCharsets.UTF_8))
                .orElse(null);
        byte[] tlsCa = conf.executorTlsCaFile()
                .map(file -> read(file, FlightPickleConf.EXECUTOR_TLS_CA_FILE).getBytes(StandardCharsets.UTF_8))
                .orElse(null);
        credentials = new Credentials(token, tlsCa);
    }

    /**
     * Where a task of this executor streams to for the pool at {@code uri}.
     *
     * @throws IllegalStateException when the executor plugin did not set this executor up for a pool
     */
    public static ExecutorStream.Endpoint endpoint(String uri) {
        Credentials known = credentials;
        if (known == null) {
            throw new IllegalStateException("this executor was not set up for a remote flightpickle pool: start"
                    + " the application with spark.flightpickle.transport=remote and the flightpickle plugin on"
                    + " the executors (spark.plugins=io.flightpickle.spark.FlightPicklePlugin)");
        }
        return ExecutorStream.Endpoint.remote(uri, known.token(), known.tlsCa());
    }

    private static String read(String file, String conf) {
        try {
            return Files.readString(Path.of(file), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("flightpickle: cannot read " + conf + "=" + file + " on this executor ("
                    + e + "); the file must exist on every executor", e);
        }
    }

    private static String nonEmpty(String token) {
        if (token.isEmpty()) {
            throw new IllegalStateException("flightpickle: the remote pool's bearer token (from "
                    + FlightPickleConf.EXECUTOR_TOKEN_FILE + " or " + FlightPickleConf.TOKEN_VARIABLE + ") is empty");
        }
        return token;
    }
}
