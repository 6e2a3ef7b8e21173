package io.flightpickle.spark.sql;

import io.flightpickle.ExecutorStream;
import io.flightpickle.spark.LocalExecutorService;
import io.flightpickle.spark.RemoteExecutorPool;
import java.io.Serializable;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.types.pojo.Schema;
import org.apache.spark.TaskContext;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.UnsafeProjection;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.util.TaskCompletionListener;
import scala.collection.Iterator;
import scala.jdk.javaapi.CollectionConverters;
import scala.runtime.AbstractFunction1;

/**
 * What a flightpickle operator runs for each partition, on the executor: opens a stream to the
 * executor's service, or to the remote pool, for the operator's function and turns the partition's
 * rows into the results' rows. Built on the driver and sent with the tasks, so it holds only
 * serializable settings (a pool's address, never its credentials, which each executor holds).
 */
final class PartitionStreamer extends AbstractFunction1<Iterator<InternalRow>, Iterator<InternalRow>>
        implements Serializable {

    private static final long serialVersionUID = 1L;
    /** Input batches in flight to the service before the oldest must be done with. */
    static final int WINDOW = 4;
    /** Longest wait for the service at any one step (its own idle deadline is 60 s). */
    static final Duration TIMEOUT = Duration.ofSeconds(120);
    static final long BODY_LIMIT = 256L << 20;

    private final StreamedFunction function;
    private final StructType input;
    private final StructType results;
    private final StructType output;
    private final UdfArguments arguments;
    private final GroupedSource grouping;
    private final SparkShim.BatchSettings settings;
    private final StreamMetrics metrics;
    private final String remotePool;

    /**
     * @param input the stream's input: the child's rows (map kinds) or the UDF's arguments
     * @param results the stream's output: the function's rows, or the UDF's one value per row
     * @param output the operator's rows
     * @param arguments how to compute a scalar UDF's arguments from a child row; null for the other kinds
     * @param grouping how the child's sorted rows form groups, one per batch; null for the ungrouped kinds
     * @param metrics the operator's, added to by every task
     * @param remotePool the remote pool's URI, or null for the executor's own service
     */
    PartitionStreamer(StreamedFunction function, StructType input, StructType results, StructType output,
            UdfArguments arguments, GroupedSource grouping, SparkShim.BatchSettings settings, StreamMetrics metrics,
            String remotePool) {
        this.function = function;
        this.input = input;
        this.results = results;
        this.output = output;
        this.arguments = arguments;
        this.grouping = grouping;
        this.settings = settings;
        this.metrics = metrics;
        this.remotePool = remotePool;
    }

    @Override
    public Iterator<InternalRow> apply(Iterator<InternalRow> rows) {
        if (grouping != null && !rows.hasNext()) {
            return rows; // no group, no call: as Spark's grouped operators skip empty partitions
        }
        TaskContext task = TaskContext.get();
        BufferAllocator allocator = SparkShim.childAllocator(
                "flightpickle stream of task " + (task == null ? "?" : task.taskAttemptId()));
        Schema inputSchema = SparkShim.inputArrowSchema(input, settings, task);
        Schema outputSchema = SparkShim.arrowSchema(results, settings);
        ExecutorStream stream;
        try {
            stream = ExecutorStream.open(endpoint(), function.kind(), function.body(), function.digest(),
                    grouping == null ? List.of() : grouping.keyNames(), inputSchema, outputSchema,
                    new ExecutorStream.Options(WINDOW, TIMEOUT, BODY_LIMIT), allocator);
        } catch (io.flightpickle.NativeException failure) {
            allocator.close();
            throw StreamFailures.forTask(failure);
        } catch (RuntimeException failure) {
            allocator.close();
            throw failure;
        }
        KilledTaskWatch.watch(stream, task);
        java.util.Iterator<InternalRow> input = grouping == null ? CollectionConverters.asJava(rows)
                : grouping.rows(CollectionConverters.asJava(rows));
        Optional<UnsafeProjection> keyedResults = grouping == null ? Optional.empty() : grouping.keyedResultProjection();
        StreamedRows results = new StreamedRows(input, stream, allocator,
                VectorSchemaRoot.create(inputSchema, allocator), settings.maxRecordsPerBatch(),
                keyedResults.orElseGet(() -> SparkShim.toUnsafeRows(output)),
                arguments == null ? null : arguments.projection(), keyedResults.isPresent(), metrics);
        if (task != null) {
            task.addTaskCompletionListener((TaskCompletionListener) context -> results.close());
        }
        return CollectionConverters.asScala(results);
    }

    private ExecutorStream.Endpoint endpoint() {
        return remotePool == null ? ExecutorStream.Endpoint.unix(LocalExecutorService.socketOfThisExecutor())
                : RemoteExecutorPool.endpoint(remotePool);
    }
}
