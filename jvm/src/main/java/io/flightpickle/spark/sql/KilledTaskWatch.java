package io.flightpickle.spark.sql;

import io.flightpickle.ExecutorStream;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.apache.spark.TaskContext;

/**
 * Cancels the executor streams of tasks that Spark killed (a cancelled job or stage, a speculative
 * copy that lost), so that they stop at once instead of when their function next answers.
 *
 * <p>Spark kills a task by marking it interrupted, and by default does not interrupt its thread;
 * a task blocked in a stream (waiting for a slow function's results) would not look at the mark
 * before the function answered or the stream's timeout passed. One daemon thread per executor JVM
 * looks at the watched tasks a few times a second and cancels the streams of killed ones; the
 * task thread then fails at once, and reports itself killed.
 */
final class KilledTaskWatch {

    private static final long PERIOD_MILLIS = 200;
    private static final Map<ExecutorStream, TaskContext> WATCHED = new ConcurrentHashMap<>();

    private KilledTaskWatch() {}

    /** Watches {@code task} until {@link #forget}; a stream of no task (outside Spark) is not watched. */
    static void watch(ExecutorStream stream, TaskContext task) {
        if (task != null) {
            Watcher.start();
            WATCHED.put(stream, task);
        }
    }

    static void forget(ExecutorStream stream) {
        WATCHED.remove(stream);
    }

    private static void cancelKilled() {
        WATCHED.forEach((stream, task) -> {
            if (task.isInterrupted()) {
                WATCHED.remove(stream);
                stream.cancel();
            }
        });
    }

    /** The thread, started with the first watched stream (holder idiom: started once, lazily). */
    private static final class Watcher {
        private static final ScheduledExecutorService THREAD = Executors.newSingleThreadScheduledExecutor(runnable -> {
            Thread thread = new Thread(runnable, "flightpickle-killed-task-watch");
            thread.setDaemon(true);
            return thread;
        });

        static {
            THREAD.scheduleWithFixedDelay(Watcher::runSafely, PERIOD_MILLIS, PERIOD_MILLIS, TimeUnit.MILLISECONDS);
        }

        static void start() {
            // Loading this class started the thread.
        }

        /** A failure must not end the schedule, which would silently stop all watching. */
        private static void runSafely() {
            try {
                cancelKilled();
            } catch (RuntimeException ignored) {
                // A stream closed meanwhile, or another one-off; the next round looks again.
            }
        }
    }
}
