package io.flightpickle.spark.sql;

import io.flightpickle.ExecutorStream;
import java.util.List;
import org.apache.spark.rdd.RDD;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.Attribute;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.execution.SparkPlan;
import scala.collection.immutable.IndexedSeq;
import scala.collection.immutable.Seq;

/**
 * {@code mapInArrow} or {@code mapInPandas} through the flightpickle executor service, in place of
 * Spark's {@code MapInArrowExec} or {@code MapInPandasExec}: the same function, output and child,
 * with the partition's batches going to the executor's service instead of to a Python worker of
 * Spark's. The function's kind ({@code map_arrow}, {@code map_pandas}) says which, and names the
 * node in plans ({@code FlightPickleMapInArrow}, {@code FlightPickleMapInPandas}).
 *
 * <p>A {@link FlightPickleStreamExec}, a plain {@link SparkPlan} underneath, rather than a subclass
 * of Spark's operators: Scala's erased bridge methods on them cannot be overridden from Java.
 */
public final class FlightPickleMapInBatchExec extends FlightPickleStreamExec {

    private static final long serialVersionUID = 1L;

    private final Expression func;

    public FlightPickleMapInBatchExec(Expression func, Seq<Attribute> output, SparkPlan child,
            StreamedFunction function) {
        super(child, output, function);
        this.func = func;
    }

    @Override
    public String nodeName() {
        return function.kind() == ExecutorStream.Kind.MAP_PANDAS ? "FlightPickleMapInPandas" : "FlightPickleMapInArrow";
    }

    public Expression func() {
        return func;
    }

    @Override
    public RDD<InternalRow> doExecute() {
        return streamPartitions(child.schema(), schema(), null);
    }

    @Override
    public SparkPlan withNewChildrenInternal(IndexedSeq<SparkPlan> newChildren) {
        return new FlightPickleMapInBatchExec(func, output, newChildren.apply(0), function);
    }

    @Override
    protected List<Object> productElements() {
        return List.of(func, output, child);
    }
}
