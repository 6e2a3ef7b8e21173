package io.flightpickle.spark.sql;

import java.util.List;
import org.apache.spark.rdd.RDD;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.Attribute;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.SortOrder;
import org.apache.spark.sql.catalyst.plans.physical.Distribution;
import org.apache.spark.sql.execution.SparkPlan;
import scala.collection.immutable.IndexedSeq;
import scala.collection.immutable.Seq;

/**
 * {@code groupBy(...).applyInPandas(f, schema)} and {@code groupBy(...).applyInArrow(f, schema)}
 * through the flightpickle executor service, in place of Spark's {@code FlatMapGroupsInPandasExec}
 * and {@code FlatMapGroupsInArrowExec}: the same grouping, function, output and child, and the
 * same required child distribution and ordering (asked of Spark's operator), so each task's rows
 * come clustered and sorted by the grouping columns. Each group goes to the service as one batch,
 * whole, however many rows it has (the function gets each group whole in Spark too; the iterator
 * form of {@code applyInArrow} gets it from the service in batches of
 * {@code spark.sql.execution.arrow.maxRecordsPerBatch} rows, as Spark feeds it, the session's value
 * travelling with the stream's conversion confs); the rows the function returns for the groups are
 * the output, group after group.
 */
public final class FlightPickleFlatMapGroupsExec extends FlightPickleStreamExec {

    /** Which of Spark's grouped map operators this one replaces. */
    enum Api {
        PANDAS("FlightPickleFlatMapGroupsInPandas"),
        ARROW("FlightPickleFlatMapGroupsInArrow");

        final String nodeName;

        Api(String nodeName) {
            this.nodeName = nodeName;
        }
    }

    private static final long serialVersionUID = 1L;

    private final Seq<Attribute> groupingAttributes;
    private final Expression func;
    private final Api api;

    public FlightPickleFlatMapGroupsExec(Seq<Attribute> groupingAttributes, Expression func,
            Seq<Attribute> output, SparkPlan child, Api api, StreamedFunction function) {
        super(child, output, function);
        this.api = api;
        this.groupingAttributes = groupingAttributes;
        this.func = func;
    }

    @Override
    public String nodeName() {
        return api.nodeName;
    }

    public Seq<Attribute> groupingAttributes() {
        return groupingAttributes;
    }

    public Expression func() {
        return func;
    }

    @Override
    public Seq<Distribution> requiredChildDistribution() {
        return SparkShim.sparkGroupedMap(api, groupingAttributes, func, output, child).requiredChildDistribution();
    }

    @Override
    public Seq<Seq<SortOrder>> requiredChildOrdering() {
        return SparkShim.sparkGroupedMap(api, groupingAttributes, func, output, child).requiredChildOrdering();
    }

    @Override
    public RDD<InternalRow> doExecute() {
        GroupedInput.Result grouping = GroupedInput.of(groupingAttributes, child.output());
        return streamGroups(grouping.input().orElseThrow(() -> new IllegalStateException(
                "flightpickle cannot group this operator's input any more: " + grouping.reason())));
    }

    @Override
    public SparkPlan withNewChildrenInternal(IndexedSeq<SparkPlan> newChildren) {
        return new FlightPickleFlatMapGroupsExec(groupingAttributes, func, output, newChildren.apply(0), api,
                function);
    }

    @Override
    protected List<Object> productElements() {
        return List.of(groupingAttributes, func, output, child, api);
    }
}
