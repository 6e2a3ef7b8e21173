package io.flightpickle.spark.sql;

import io.flightpickle.ExecutorStream;
import org.apache.spark.rdd.RDD;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.Attribute;
import org.apache.spark.sql.catalyst.expressions.AttributeSet;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.plans.physical.Partitioning;
import org.apache.spark.sql.execution.SparkPlan;
import scala.collection.immutable.IndexedSeq;
import scala.collection.immutable.Seq;
import scala.jdk.javaapi.CollectionConverters;
import scala.reflect.ClassTag$;

/**
 * {@code mapInArrow} or {@code mapInPandas} through the flightpickle executor service, in place of
 * Spark's {@code MapInArrowExec} or {@code MapInPandasExec}: the same function, output and child,
 * with the partition's batches going to the executor's service instead of to a Python worker of
 * Spark's. The function's kind ({@code map_arrow}, {@code map_pandas}) says which, and names the
 * node in plans ({@code FlightPickleMapInArrow}, {@code FlightPickleMapInPandas}).
 *
 * <p>A plain {@link SparkPlan} rather than a subclass of Spark's operators: Scala's erased bridge
 * methods on them cannot be overridden from Java.
 */
public final class FlightPickleMapInBatchExec extends SparkPlan {

    private static final long serialVersionUID = 1L;

    private final Expression func;
    private final Seq<Attribute> output;
    private final SparkPlan child;
    private final StreamedFunction function;
    /** Made on first use, on the driver, as Spark's operators make theirs. */
    private transient StreamMetrics streamMetrics;

    public FlightPickleMapInBatchExec(Expression func, Seq<Attribute> output, SparkPlan child,
            StreamedFunction function) {
        this.func = func;
        this.output = output;
        this.child = child;
        this.function = function;
    }

    @Override
    public String nodeName() {
        return function.kind() == ExecutorStream.Kind.MAP_PANDAS ? "FlightPickleMapInPandas" : "FlightPickleMapInArrow";
    }

    public Expression func() {
        return func;
    }

    public SparkPlan child() {
        return child;
    }

    @Override
    public Seq<Attribute> output() {
        return output;
    }

    @Override
    public Seq<SparkPlan> children() {
        return CollectionConverters.asScala(java.util.List.of(child)).toList();
    }

    @Override
    @SuppressWarnings("unchecked")
    public AttributeSet producedAttributes() {
        // Scala's Seq is covariant; Java's generics are not.
        return AttributeSet.apply((scala.collection.Iterable<Expression>) (Object) output);
    }

    @Override
    public Partitioning outputPartitioning() {
        return child.outputPartitioning();
    }

    @Override
    public RDD<InternalRow> doExecute() {
        PartitionStreamer streamer =
                new PartitionStreamer(function, child.schema(), schema(), schema(), null, SparkShim.batchSettings(),
                streamMetrics());
        return child.execute().mapPartitionsInternal(streamer, false, ClassTag$.MODULE$.apply(InternalRow.class));
    }

    @Override
    public scala.collection.immutable.Map<String, org.apache.spark.sql.execution.metric.SQLMetric> metrics() {
        return streamMetrics().byName();
    }

    private synchronized StreamMetrics streamMetrics() {
        if (streamMetrics == null) {
            streamMetrics = StreamMetrics.create(sparkContext());
        }
        return streamMetrics;
    }

    @Override
    public SparkPlan withNewChildrenInternal(IndexedSeq<SparkPlan> newChildren) {
        return new FlightPickleMapInBatchExec(func, output, newChildren.apply(0), function);
    }

    /** The function is not a product element (plans print and compare without it). */
    @Override
    public Seq<Object> otherCopyArgs() {
        return CollectionConverters.asScala(java.util.List.<Object>of(function)).toList();
    }

    @Override
    public int productArity() {
        return 3;
    }

    @Override
    public Object productElement(int n) {
        return switch (n) {
            case 0 -> func;
            case 1 -> output;
            case 2 -> child;
            default -> throw new IndexOutOfBoundsException(n);
        };
    }

    @Override
    public boolean canEqual(Object other) {
        return other instanceof FlightPickleMapInBatchExec;
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof FlightPickleMapInBatchExec that && func.equals(that.func)
                && output.equals(that.output) && child.equals(that.child) && function.digest().equals(that.function.digest());
    }

    @Override
    public int hashCode() {
        return java.util.Objects.hash(func, output, child, function.digest());
    }
}
