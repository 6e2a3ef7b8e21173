package io.flightpickle.spark.sql;

import io.flightpickle.spark.FlightPickleConf;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.rdd.RDD;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.Attribute;
import org.apache.spark.sql.catalyst.expressions.AttributeSet;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.plans.physical.Partitioning;
import org.apache.spark.sql.execution.SparkPlan;
import org.apache.spark.sql.execution.metric.SQLMetric;
import org.apache.spark.sql.types.StructType;
import scala.collection.immutable.Map;
import scala.collection.immutable.Seq;
import scala.jdk.javaapi.CollectionConverters;
import scala.reflect.ClassTag$;

/**
 * What the flightpickle SQL operators share: one child whose partitions stream through the
 * executor service, the {@link StreamedFunction} they stream through, and the operator's SQL
 * metrics.
 *
 * <p>The function is a copy argument beside the product elements, not one of them: plans print
 * and compare without it, and Catalyst's {@code makeCopy} still passes it to the subclass's
 * constructor, which therefore takes the product elements followed by the function. A copy
 * gets its own metrics, made on first use, as Spark's operators get theirs.
 */
public abstract class FlightPickleStreamExec extends SparkPlan {

    private static final long serialVersionUID = 1L;

    protected final SparkPlan child;
    /** The operator's columns, fixed when it is made (as Spark's operators' are by their arguments). */
    protected final Seq<Attribute> output;
    protected final StreamedFunction function;
    /** Made on first use, on the driver, as Spark's operators make theirs. */
    private transient StreamMetrics streamMetrics;

    protected FlightPickleStreamExec(SparkPlan child, Seq<Attribute> output, StreamedFunction function) {
        this.child = child;
        this.output = output;
        this.function = function;
    }

    /** The one child, by the name Spark's unary operators give it. */
    public final SparkPlan child() {
        return child;
    }

    @Override
    public final Seq<Attribute> output() {
        return output;
    }

    @Override
    public Seq<SparkPlan> children() {
        return CollectionConverters.asScala(List.of(child)).toList();
    }

    @Override
    public Partitioning outputPartitioning() {
        return child.outputPartitioning();
    }

    @Override
    public Map<String, SQLMetric> metrics() {
        return streamMetrics().byName();
    }

    /** What the operator makes rather than passes on from its child: by default its whole output. */
    @Override
    public AttributeSet producedAttributes() {
        return attributeSet(output());
    }

    protected static AttributeSet attributeSet(Seq<? extends Attribute> attributes) {
        // Scala's Seq is covariant; Java's generics are not.
        @SuppressWarnings("unchecked")
        scala.collection.Iterable<Expression> expressions = (scala.collection.Iterable<Expression>) (Object) attributes;
        return AttributeSet.apply(expressions);
    }

    /**
     * The product elements in order: what plans print and compare the operator by, and the first
     * arguments of its constructor (which {@code makeCopy} calls with them, then the function).
     */
    protected abstract List<Object> productElements();

    @Override
    public final int productArity() {
        return productElements().size();
    }

    @Override
    public final Object productElement(int n) {
        return productElements().get(n);
    }

    /** The function is not a product element (plans print and compare without it). */
    @Override
    public final Seq<Object> otherCopyArgs() {
        return CollectionConverters.asScala(List.<Object>of(function)).toList();
    }

    /**
     * The child's partitions through the service: each task sends rows of the {@code input}
     * schema (picked from the child's rows by {@code arguments}, or the rows themselves when it
     * is null) and gets back rows of the {@code result} schema, making rows of this plan's schema.
     */
    protected final RDD<InternalRow> streamPartitions(StructType input, StructType result, UdfArguments arguments) {
        return streamPartitions(new PartitionStreamer(function, input, result, schema(), arguments, null,
                SparkShim.batchSettings(), streamMetrics(), remotePool()));
    }

    /**
     * The child's partitions, sorted by the grouping columns, through the service one group per
     * batch: each task sends the data rows of {@code grouping} and gets back rows of this plan's
     * schema.
     */
    protected final RDD<InternalRow> streamGroups(GroupedInput grouping) {
        return streamPartitions(new PartitionStreamer(function, grouping.dataSchema(), schema(), schema(), null,
                grouping, SparkShim.batchSettings(), streamMetrics(), remotePool()));
    }

    /**
     * The child's partitions, sorted by the grouping expressions, through the service one group per
     * batch: each task sends the rows of {@code input} (the UDF's arguments) and gets back one row
     * of {@code results} per group, which {@code aggregate} joins to the group's key.
     */
    protected final RDD<InternalRow> streamAggregate(AggregateInput aggregate, StructType input, StructType results) {
        return streamPartitions(new PartitionStreamer(function, input, results, schema(), null, aggregate,
                SparkShim.batchSettings(), streamMetrics(), remotePool()));
    }

    private RDD<InternalRow> streamPartitions(PartitionStreamer streamer) {
        return child.execute().mapPartitionsInternal(streamer, false, ClassTag$.MODULE$.apply(InternalRow.class));
    }

    /**
     * The remote pool this query's tasks stream to, with {@code spark.flightpickle.transport=remote};
     * null for each executor's own service. Read when the query runs, so that a session may point
     * its queries at another pool at run time.
     *
     * @throws IllegalArgumentException when the session's pool address is missing or malformed
     */
    private static String remotePool() {
        if (!SparkShim.sessionTransport().equals("remote")) {
            return null;
        }
        String uri = SparkShim.sessionExecutorUri().orElseThrow(() -> new IllegalArgumentException(
                "flightpickle: " + FlightPickleConf.TRANSPORT + "=remote needs " + FlightPickleConf.EXECUTOR_URI
                        + "=grpc://host:port (or grpc+tls://host:port)"));
        FlightPickleConf.poolUriProblem(uri).ifPresent(problem -> {
            throw new IllegalArgumentException("flightpickle: " + problem);
        });
        return uri;
    }

    @Override
    public final boolean canEqual(Object other) {
        return other != null && other.getClass() == getClass();
    }

    /** Equal product elements, and the same function as its digest names it. */
    @Override
    public final boolean equals(Object other) {
        return canEqual(other) && identity().equals(((FlightPickleStreamExec) other).identity());
    }

    @Override
    public final int hashCode() {
        return identity().hashCode();
    }

    /** The product elements followed by the function's digest. */
    private List<Object> identity() {
        List<Object> identity = new ArrayList<>(productArity() + 1);
        CollectionConverters.asJava(productIterator()).forEachRemaining(identity::add);
        identity.add(function.digest());
        return identity;
    }

    private synchronized StreamMetrics streamMetrics() {
        if (streamMetrics == null) {
            streamMetrics = StreamMetrics.create(sparkContext());
        }
        return streamMetrics;
    }
}
