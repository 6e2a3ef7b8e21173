package io.flightpickle.spark.sql;

import org.apache.spark.rdd.RDD;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.Attribute;
import org.apache.spark.sql.catalyst.expressions.AttributeSet;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.SortOrder;
import org.apache.spark.sql.catalyst.plans.physical.Distribution;
import org.apache.spark.sql.execution.SparkPlan;
import scala.collection.immutable.IndexedSeq;
import scala.collection.immutable.Seq;

/**
 * {@code groupBy(...).applyInPandas(f, schema)} through the flightpickle executor service, in
 * place of Spark's {@code FlatMapGroupsInPandasExec}: the same grouping, function, output and
 * child, and the same required child distribution and ordering (asked of Spark's operator), so
 * each task's rows come clustered and sorted by the grouping columns. Each group goes to the
 * service as one batch, whole, however many rows it has (the function gets each group whole in
 * Spark too); the rows the function returns for the groups are the output, group after group.
 */
public final class FlightPickleFlatMapGroupsInPandasExec extends FlightPickleStreamExec {

    private static final long serialVersionUID = 1L;

    private final Seq<Attribute> groupingAttributes;
    private final Expression func;
    private final Seq<Attribute> output;

    public FlightPickleFlatMapGroupsInPandasExec(Seq<Attribute> groupingAttributes, Expression func,
            Seq<Attribute> output, SparkPlan child, StreamedFunction function) {
        super(child, function);
        this.groupingAttributes = groupingAttributes;
        this.func = func;
        this.output = output;
    }

    @Override
    public String nodeName() {
        return "FlightPickleFlatMapGroupsInPandas";
    }

    public Seq<Attribute> groupingAttributes() {
        return groupingAttributes;
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
    @SuppressWarnings("unchecked")
    public AttributeSet producedAttributes() {
        // Scala's Seq is covariant; Java's generics are not.
        return AttributeSet.apply((scala.collection.Iterable<Expression>) (Object) output);
    }

    @Override
    public Seq<Distribution> requiredChildDistribution() {
        return SparkShim.sparkGroupedMap(groupingAttributes, func, output, child).requiredChildDistribution();
    }

    @Override
    public Seq<Seq<SortOrder>> requiredChildOrdering() {
        return SparkShim.sparkGroupedMap(groupingAttributes, func, output, child).requiredChildOrdering();
    }

    @Override
    public RDD<InternalRow> doExecute() {
        GroupedInput.Result grouping = GroupedInput.of(groupingAttributes, child.output());
        return streamGroups(grouping.input().orElseThrow(() -> new IllegalStateException(
                "flightpickle cannot group this operator's input any more: " + grouping.reason())));
    }

    @Override
    public SparkPlan withNewChildrenInternal(IndexedSeq<SparkPlan> newChildren) {
        return new FlightPickleFlatMapGroupsInPandasExec(groupingAttributes, func, output, newChildren.apply(0),
                function);
    }

    @Override
    public int productArity() {
        return 4;
    }

    @Override
    public Object productElement(int n) {
        return switch (n) {
            case 0 -> groupingAttributes;
            case 1 -> func;
            case 2 -> output;
            case 3 -> child;
            default -> throw new IndexOutOfBoundsException(n);
        };
    }
}
