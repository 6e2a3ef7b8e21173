package io.flightpickle.spark.sql;

import io.flightpickle.ExecutorStream;
import io.flightpickle.NativeException;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.Iterator;
import java.util.NoSuchElementException;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.JoinedRow;
import org.apache.spark.sql.catalyst.expressions.UnsafeProjection;
import org.apache.spark.sql.execution.arrow.ArrowWriter;
import org.apache.spark.sql.vectorized.ArrowColumnVector;
import org.apache.spark.sql.vectorized.ColumnVector;
import org.apache.spark.sql.vectorized.ColumnarBatch;

/**
 * One task's rows through an executor stream: input rows go out in Arrow batches, result rows come
 * back from the result batches, in the order the service sends them.
 *
 * <p>Input batches hold up to the batch size of rows, or, when the input is {@link GroupedRows},
 * exactly one group each, however large (the function gets each group whole, as Spark gives it).
 *
 * <p>For the map and grouped kinds the result rows are the output. For the scalar kinds (a UDF's value per
 * row) only the UDF's arguments go out, and the results answer the input rows one for one, in order:
 * the input rows wait here, copied, until their results arrive, and each output row is the input
 * row followed by its result, as Spark's own operator lines them up. Results are paired by row, not
 * by batch, because an iterator {@code pandas_udf} may split its results differently from its
 * input (one result for two batches, or two for one); the service checks that the row counts
 * agree in all, and a stream that still breaks that fails the task here. The waiting rows are held
 * in memory, not spilled: for the one-result-per-batch kinds at most the window's batches of them,
 * for an iterator {@code pandas_udf} as many as its function takes before it answers.
 *
 * <p>A grouped aggregate sends each group's arguments as one batch and gets one row of values per
 * group: the group's key waits here instead of its rows, and each output row is the result
 * expressions over the key followed by the values, as Spark's operator joins them.
 *
 * <p>The task thread does both. Before each input batch it takes whatever results already arrived
 * without waiting, so a function that yields only after several batches neither blocks the task nor
 * lets results pile up; at the end of the input it waits for the rest. The service is at most the
 * stream's window of batches behind, which bounds what is in flight.
 */
final class StreamedRows implements Iterator<InternalRow>, AutoCloseable {

    private final Iterator<InternalRow> input;
    private final ExecutorStream stream;
    private final BufferAllocator allocator;
    private final VectorSchemaRoot inputBatch;
    private final ArrowWriter writer;
    private final int batchRows;
    private final UnsafeProjection toUnsafe;
    /** The UDF's arguments of an input row; null for the map kinds, which send whole rows. */
    private final UnsafeProjection arguments;
    /** Whether each group's one result row follows the group's key (a grouped aggregate). */
    private final boolean keysGroups;
    /** Input rows sent whose results have not arrived yet, oldest first (scalar kinds only). */
    private final Deque<InternalRow> awaitingResults = new ArrayDeque<>();
    private final JoinedRow joined = new JoinedRow();
    private final StreamMetrics metrics;
    private VectorSchemaRoot resultBatch;
    private Iterator<InternalRow> resultRows;
    private boolean inputEnded;
    private boolean done;
    private boolean closed;

    StreamedRows(Iterator<InternalRow> input, ExecutorStream stream, BufferAllocator allocator,
            VectorSchemaRoot inputBatch, int batchRows, UnsafeProjection toOutput, UnsafeProjection arguments,
            boolean keysGroups, StreamMetrics metrics) {
        this.input = input;
        this.stream = stream;
        this.allocator = allocator;
        this.inputBatch = inputBatch;
        this.writer = SparkShim.arrowWriter(inputBatch);
        this.batchRows = Math.max(1, batchRows);
        this.toUnsafe = toOutput;
        this.arguments = arguments;
        this.keysGroups = keysGroups;
        this.metrics = metrics;
    }

    @Override
    public boolean hasNext() {
        try {
            while (resultRows == null || !resultRows.hasNext()) {
                closeResultBatch();
                if (done) {
                    return false;
                }
                VectorSchemaRoot next = nextResult();
                if (next == null) {
                    checkAllAnswered();
                    done = true;
                    recordStats();
                    close();
                    return false;
                }
                metrics.received(next);
                resultBatch = next;
                resultRows = pairsResults() ? withInputs(rowsOf(next), next.getRowCount()) : rowsOf(next);
            }
            return true;
        } catch (NativeException failure) {
            recordStats();
            close();
            if ("cancelled".equals(failure.kind())) {
                SparkShim.stopIfKilled();
            }
            throw StreamFailures.forTask(failure);
        }
    }

    @Override
    public InternalRow next() {
        if (!hasNext()) {
            throw new NoSuchElementException();
        }
        return toUnsafe.apply(resultRows.next());
    }

    /** The next result batch, feeding input while none is there; null after the last. */
    private VectorSchemaRoot nextResult() {
        while (!inputEnded) {
            VectorSchemaRoot ready = stream.pull(false);
            if (ready != null) {
                return ready;
            }
            if (input.hasNext()) {
                pushNextBatch();
            } else {
                stream.finish();
                inputEnded = true;
            }
        }
        long started = System.nanoTime();
        VectorSchemaRoot last = stream.pull(true);
        metrics.waited(System.nanoTime() - started);
        return last;
    }

    private void pushNextBatch() {
        int rows = 0;
        GroupedRows groups = input instanceof GroupedRows grouped ? grouped : null;
        while ((groups != null || rows < batchRows) && input.hasNext()) {
            InternalRow row = input.next();
            rows++;
            if (arguments == null) {
                writer.write(row);
            } else {
                writer.write(arguments.apply(row));
                // Spark reuses row objects: keep a copy until the result arrives.
                awaitingResults.add(row.copy());
            }
            if (groups != null && groups.groupEnds()) {
                if (keysGroups) {
                    awaitingResults.add(groups.groupKey());
                }
                break;
            }
        }
        writer.finish();
        long started = System.nanoTime();
        stream.push(inputBatch);
        metrics.sent(inputBatch, System.nanoTime() - started);
        writer.reset();
    }

    /** Adds what the service reported of the stream, if it ended with a report, to the metrics. */
    private void recordStats() {
        if (!closed) {
            stream.stats().ifPresent(metrics::reported);
        }
    }

    /** Each result row after the input row (or group key) it answers: the oldest still waiting. */
    private Iterator<InternalRow> withInputs(Iterator<InternalRow> results, int count) {
        if (count > awaitingResults.size()) {
            throw new IllegalStateException("the executor service answered " + awaitingResults.size()
                    + " input rows still waiting with " + count + " results");
        }
        return new Iterator<>() {
            @Override
            public boolean hasNext() {
                return results.hasNext();
            }

            @Override
            public InternalRow next() {
                return joined.apply(awaitingResults.poll(), results.next());
            }
        };
    }

    /** Whether result rows answer waiting input rows (scalar kinds) or group keys (aggregates). */
    private boolean pairsResults() {
        return arguments != null || keysGroups;
    }

    /** Fails a stream that ended with input rows it gave no result for. */
    private void checkAllAnswered() {
        if (pairsResults() && !awaitingResults.isEmpty()) {
            throw new IllegalStateException("the executor service ended the stream with " + awaitingResults.size()
                    + " input rows unanswered");
        }
    }

    private static Iterator<InternalRow> rowsOf(VectorSchemaRoot batch) {
        ColumnVector[] columns = new ColumnVector[batch.getFieldVectors().size()];
        int i = 0;
        for (FieldVector vector : batch.getFieldVectors()) {
            columns[i++] = new ArrowColumnVector(vector);
        }
        return new ColumnarBatch(columns, batch.getRowCount()).rowIterator();
    }

    private void closeResultBatch() {
        if (resultBatch != null) {
            resultBatch.close();
            resultBatch = null;
            resultRows = null;
        }
    }

    /**
     * Releases everything: the stream (an unfinished one is dropped by the service), both batches,
     * then the allocator, which fails loudly if any buffer was leaked. Idempotent; also called when
     * the task completes, so a task that stops early (a limit, a failure) still cleans up.
     */
    @Override
    public void close() {
        done = true;
        if (closed) {
            return;
        }
        closed = true;
        KilledTaskWatch.forget(stream);
        stream.close();
        closeResultBatch();
        inputBatch.close();
        allocator.close();
    }
}
