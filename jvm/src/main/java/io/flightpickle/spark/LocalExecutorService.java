package io.flightpickle.spark;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The flightpickle executor service of one executor ({@code python -m flightpickle.executor serve}),
 * started by the executor plugin with {@code spark.flightpickle.transport=local}: started before any
 * task runs, started again whenever it dies, stopped with the executor (and, with
 * {@code --exit-with-parent}, by itself when the executor's JVM dies without stopping it).
 *
 * <p>Its Unix socket sits in a private directory under the executor's working directory, or under
 * {@code java.io.tmpdir} when that path would be too long for a socket (108 bytes on Linux). Tasks
 * find it through the JVM-wide system property {@link #SOCKET_PROPERTY}, which is also how
 * {@code spark.flightpickle.executor.uri} points them at a service started by someone else.
 */
public final class LocalExecutorService implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(LocalExecutorService.class);
    public static final String SOCKET_PROPERTY = "flightpickle.executor.socket";
    /** Linux's sun_path is 108 bytes with the terminating zero; keep a margin. */
    static final int MAX_SOCKET_PATH = 100;
    static final long STARTUP_SECONDS = 120;
    static final long STOP_SECONDS = 30;
    /** Pause before starting a service that died, so a service that cannot start does not spin. */
    static final long RESTART_PAUSE_MILLIS = 1000;

    private final List<String> command;
    private final Path directory;
    private final Path socket;
    private volatile Process process;
    private volatile boolean stopping;
    private Thread watchdog;

    private LocalExecutorService(String python, int workers, double cancelGraceSeconds, Path directory) {
        this.directory = directory;
        this.socket = directory.resolve("executor.sock");
        this.command = List.of(python, "-m", "flightpickle.executor", "serve", "--listen", "unix://" + socket,
                "--workers", Integer.toString(workers), "--cancel-grace", Double.toString(cancelGraceSeconds),
                "--exit-with-parent");
    }

    /**
     * Starts the service and waits until it listens.
     *
     * @param python the interpreter Spark runs Python workers with
     * @param cancelGraceSeconds how long the function of a killed task may run on before its worker
     *     is replaced (the service's {@code --cancel-grace})
     * @throws IllegalStateException with the service's own words when it does not start
     */
    public static LocalExecutorService start(String python, int workers, double cancelGraceSeconds, Path workDir)
            throws IOException {
        LocalExecutorService service =
                new LocalExecutorService(python, workers, cancelGraceSeconds, socketDirectory(workDir));
        service.process = service.launch();
        System.setProperty(SOCKET_PROPERTY, service.socket.toString());
        service.watchdog = new Thread(service::watch, "flightpickle-executor-service-watchdog");
        service.watchdog.setDaemon(true);
        service.watchdog.start();
        return service;
    }

    /** The socket that tasks of this JVM stream to. */
    public static Path socketOfThisExecutor() {
        String socket = System.getProperty(SOCKET_PROPERTY);
        if (socket == null) {
            throw new IllegalStateException("no flightpickle executor service runs in this executor: "
                    + "spark.flightpickle.transport=local needs the flightpickle plugin on the executors"
                    + " (spark.plugins=io.flightpickle.spark.FlightPicklePlugin)");
        }
        return Path.of(socket);
    }

    /** Points this JVM's tasks at a service that someone else runs ({@code unix:///path}). */
    public static void useExisting(String uri) {
        System.setProperty(SOCKET_PROPERTY, uri.substring("unix://".length()));
    }

    public Path socket() {
        return socket;
    }

    /** The service process's id, which changes when it is started again. */
    public long pid() {
        return process.pid();
    }

    private static Path socketDirectory(Path workDir) throws IOException {
        Path parent = workDir.toAbsolutePath();
        // createTempDirectory appends up to 20 digits to the prefix.
        if (parent.toString().length() + "/fpx-12345678901234567890/executor.sock".length() > MAX_SOCKET_PATH) {
            parent = Path.of(System.getProperty("java.io.tmpdir"));
        }
        return Files.createTempDirectory(parent, "fpx-");
    }

    /** Starts the process and returns once it printed that it listens. */
    private Process launch() throws IOException {
        ProcessBuilder builder = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT);
        Process started = builder.start();
        BufferedReader out = new BufferedReader(new InputStreamReader(started.getInputStream(), StandardCharsets.UTF_8));
        CompletableFuture<String> firstLine = CompletableFuture.supplyAsync(() -> {
            try {
                return out.readLine();
            } catch (IOException e) {
                return null;
            }
        });
        String line;
        try {
            line = firstLine.get(STARTUP_SECONDS, TimeUnit.SECONDS);
        } catch (TimeoutException | ExecutionException e) {
            line = null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            line = null;
        }
        if (line == null || !line.contains("listening")) {
            started.destroyForcibly();
            throw new IllegalStateException("the flightpickle executor service did not start (" + String.join(" ", command)
                    + "; it said " + (line == null ? "nothing" : "\"" + line + "\"")
                    + "; its errors are in this executor's stderr). Is flightpickle installed for that Python?");
        }
        // Nothing else is read from stdout; drain it so the service never blocks on a full pipe.
        Thread drain = new Thread(() -> drain(out), "flightpickle-executor-service-stdout");
        drain.setDaemon(true);
        drain.start();
        LOG.info("flightpickle: executor service listening on {} (pid {})", socket, started.pid());
        return started;
    }

    private static void drain(BufferedReader out) {
        try {
            while (out.readLine() != null) {
                // discard
            }
        } catch (IOException closed) {
            // the process is gone
        }
    }

    /** Starts the service again whenever it exits, until the executor stops. */
    private void watch() {
        while (!stopping) {
            try {
                int status = process.waitFor();
                if (stopping) {
                    return;
                }
                LOG.warn("flightpickle: the executor service exited with status {}; starting it again", status);
                Thread.sleep(RESTART_PAUSE_MILLIS);
                if (!stopping) {
                    process = launch();
                }
            } catch (InterruptedException e) {
                return;
            } catch (IOException | IllegalStateException e) {
                LOG.error("flightpickle: could not start the executor service again; will retry", e);
            }
        }
    }

    /** Stops the service: SIGTERM (it finishes its streams), then SIGKILL after a grace period. */
    @Override
    public void close() {
        stopping = true;
        if (watchdog != null) {
            watchdog.interrupt();
        }
        Process running = process;
        if (running != null && running.isAlive()) {
            running.destroy();
            try {
                if (!running.waitFor(STOP_SECONDS, TimeUnit.SECONDS)) {
                    running.destroyForcibly();
                }
            } catch (InterruptedException e) {
                running.destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
        try {
            Files.deleteIfExists(socket);
            Files.deleteIfExists(directory);
        } catch (IOException e) {
            LOG.debug("flightpickle: could not remove {}", directory, e);
        }
    }

    /** The command line, for logs and tests. */
    List<String> command() {
        return new ArrayList<>(command);
    }
}
