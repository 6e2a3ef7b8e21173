package io.flightpickle.spark.sql;

import java.util.ArrayList;
import java.util.List;
import org.apache.spark.rdd.RDD;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.Attribute;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.NamedExpression;
import org.apache.spark.sql.catalyst.expressions.PythonUDAF;
import org.apache.spark.sql.catalyst.expressions.SortOrder;
import org.apache.spark.sql.catalyst.expressions.aggregate.AggregateExpression;
import org.apache.spark.sql.catalyst.plans.physical.Distribution;
import org.apache.spark.sql.execution.SparkPlan;
import org.apache.spark.sql.types.Metadata;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import scala.collection.immutable.IndexedSeq;
import scala.collection.immutable.Seq;
import scala.jdk.javaapi.CollectionConverters;

/**
 * {@code groupBy(...).agg(f(col))} with one grouped-aggregate {@code pandas_udf} through the
 * flightpickle executor service, in place of Spark's {@code ArrowAggregatePythonExec}: the same
 * expressions and child, and the same required child distribution and ordering (asked of Spark's
 * operator), so each task's rows come clustered and sorted by the grouping expressions. Each group
 * goes to the service as one batch of the UDF's arguments, whole; its one value comes back and
 * joins the group's key in the result expressions (see {@link AggregateInput}).
 */
public final class FlightPickleArrowAggregatePythonExec extends FlightPickleStreamExec {

    private static final long serialVersionUID = 1L;

    private final Seq<NamedExpression> groupingExpressions;
    private final Seq<AggregateExpression> aggExpressions;
    private final Seq<NamedExpression> resultExpressions;

    public FlightPickleArrowAggregatePythonExec(Seq<NamedExpression> groupingExpressions,
            Seq<AggregateExpression> aggExpressions, Seq<NamedExpression> resultExpressions, SparkPlan child,
            StreamedFunction function) {
        super(child, attributesOf(resultExpressions), function);
        this.groupingExpressions = groupingExpressions;
        this.aggExpressions = aggExpressions;
        this.resultExpressions = resultExpressions;
    }

    @Override
    public String nodeName() {
        return "FlightPickleArrowAggregatePython";
    }

    /** The result expressions' attributes, as Spark's operator outputs them. */
    private static Seq<Attribute> attributesOf(Seq<NamedExpression> resultExpressions) {
        List<Attribute> all = new ArrayList<>();
        CollectionConverters.asJava(resultExpressions).forEach(expression -> all.add(expression.toAttribute()));
        return CollectionConverters.asScala(all).toList();
    }

    @Override
    public Seq<Distribution> requiredChildDistribution() {
        return SparkShim.sparkAggregate(groupingExpressions, aggExpressions, resultExpressions, child)
                .requiredChildDistribution();
    }

    @Override
    public Seq<Seq<SortOrder>> requiredChildOrdering() {
        return SparkShim.sparkAggregate(groupingExpressions, aggExpressions, resultExpressions, child)
                .requiredChildOrdering();
    }

    /** Each task sends the UDF's arguments, group by group, and gets its one value per group back. */
    @Override
    @SuppressWarnings("unchecked")
    public RDD<InternalRow> doExecute() {
        AggregateExpression aggregate = CollectionConverters.asJava(aggExpressions).get(0);
        PythonUDAF udf = (PythonUDAF) aggregate.aggregateFunction();
        List<StructField> argumentFields = new ArrayList<>();
        for (Expression argument : CollectionConverters.asJava(udf.children())) {
            argumentFields.add(new StructField("_" + argumentFields.size(), argument.dataType(), true, Metadata.empty()));
        }
        StructType results = new StructType(new StructField[] {
            new StructField("_0", udf.dataType(), true, Metadata.empty())});
        List<Attribute> keyedResults = new ArrayList<>();
        CollectionConverters.asJava(groupingExpressions).forEach(expression -> keyedResults.add(expression.toAttribute()));
        keyedResults.add(aggregate.resultAttribute());
        // Scala's Seq is covariant; Java's generics are not.
        AggregateInput input = new AggregateInput((Seq<Expression>) (Object) groupingExpressions, udf.children(),
                child.output(), (Seq<Expression>) (Object) resultExpressions,
                CollectionConverters.asScala(keyedResults).toList());
        return streamAggregate(input, new StructType(argumentFields.toArray(new StructField[0])), results);
    }

    @Override
    public SparkPlan withNewChildrenInternal(IndexedSeq<SparkPlan> newChildren) {
        return new FlightPickleArrowAggregatePythonExec(groupingExpressions, aggExpressions, resultExpressions,
                newChildren.apply(0), function);
    }

    @Override
    protected List<Object> productElements() {
        return List.of(groupingExpressions, aggExpressions, resultExpressions, child);
    }
}
