package io.flightpickle.spark.sql;

import java.util.Iterator;
import java.util.List;
import java.util.Optional;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.Attribute;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.UnsafeProjection;
import scala.collection.immutable.Seq;

/**
 * How a grouped aggregate's child rows become the service's input and its answers the output:
 * the rows, sorted by the grouping expressions, go one group per batch as the UDF's arguments;
 * the service answers each group with one row of the UDF's value, which follows the group's key
 * into the result expressions, as Spark's {@code ArrowAggregatePythonExec} joins them. Without
 * grouping expressions the whole partition is one group.
 *
 * @param grouping the grouping expressions over the child's rows
 * @param arguments the UDF's argument expressions over the child's rows
 * @param childOutput the child's output
 * @param resultExpressions the operator's output expressions, over {@code keyedResults}
 * @param keyedResults the grouping expressions' attributes followed by the UDF's result attribute
 */
record AggregateInput(Seq<Expression> grouping, Seq<Expression> arguments, Seq<Attribute> childOutput,
        Seq<Expression> resultExpressions, Seq<Attribute> keyedResults) implements GroupedSource {

    @Override
    public List<String> keyNames() {
        return List.of(); // the key stays in the task: the service gets the arguments only
    }

    @Override
    public GroupedRows rows(Iterator<InternalRow> sorted) {
        return new GroupedRows(sorted, SparkShim.argumentProjection(grouping, childOutput),
                SparkShim.argumentProjection(arguments, childOutput));
    }

    @Override
    public Optional<UnsafeProjection> keyedResultProjection() {
        return Optional.of(SparkShim.argumentProjection(resultExpressions, keyedResults));
    }
}
