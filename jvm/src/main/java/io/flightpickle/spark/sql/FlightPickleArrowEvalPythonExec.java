package io.flightpickle.spark.sql;

import java.util.ArrayList;
import java.util.List;
import org.apache.spark.rdd.RDD;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.Attribute;
import org.apache.spark.sql.catalyst.expressions.AttributeSet;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.PythonUDF;
import org.apache.spark.sql.execution.SparkPlan;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import scala.collection.immutable.IndexedSeq;
import scala.collection.immutable.Seq;
import scala.jdk.javaapi.CollectionConverters;

/**
 * A scalar Python UDF (the Arrow-batched {@code udf}, or a scalar {@code pandas_udf}) through the
 * flightpickle executor service, in place of Spark's {@code ArrowEvalPythonExec}: the child's rows
 * followed by the UDF's value for each, in the child's order. Only the UDF's arguments go to the
 * service; the rows wait in the task until their values come back (see {@link StreamedRows}).
 */
public final class FlightPickleArrowEvalPythonExec extends FlightPickleStreamExec {

    private static final long serialVersionUID = 1L;

    private final Seq<PythonUDF> udfs;
    private final Seq<Attribute> resultAttrs;

    /** @param udfs exactly one UDF (what the rule replaces), kept as Spark's operator keeps them */
    public FlightPickleArrowEvalPythonExec(Seq<PythonUDF> udfs, Seq<Attribute> resultAttrs, SparkPlan child,
            StreamedFunction function) {
        super(child, function);
        this.udfs = udfs;
        this.resultAttrs = resultAttrs;
    }

    @Override
    public String nodeName() {
        return "FlightPickleArrowEvalPython";
    }

    @Override
    public Seq<Attribute> output() {
        List<Attribute> all = new ArrayList<>(CollectionConverters.asJava(child.output()));
        all.addAll(CollectionConverters.asJava(resultAttrs));
        return CollectionConverters.asScala(all).toList();
    }

    @Override
    @SuppressWarnings("unchecked")
    public AttributeSet producedAttributes() {
        return AttributeSet.apply((scala.collection.Iterable<Expression>) (Object) resultAttrs);
    }

    @Override
    public RDD<InternalRow> doExecute() {
        PythonUDF udf = udfs.head();
        List<StructField> argumentFields = new ArrayList<>();
        for (Expression argument : CollectionConverters.asJava(udf.children())) {
            argumentFields.add(new StructField("_" + argumentFields.size(), argument.dataType(), true,
                    org.apache.spark.sql.types.Metadata.empty()));
        }
        StructType arguments = new StructType(argumentFields.toArray(new StructField[0]));
        StructType result = new StructType(new StructField[] {
            new StructField("_0", udf.dataType(), true, org.apache.spark.sql.types.Metadata.empty())
        });
        return streamPartitions(arguments, result, new UdfArguments(udf.children(), child.output()));
    }

    @Override
    public SparkPlan withNewChildrenInternal(IndexedSeq<SparkPlan> newChildren) {
        return new FlightPickleArrowEvalPythonExec(udfs, resultAttrs, newChildren.apply(0), function);
    }

    @Override
    public int productArity() {
        return 3;
    }

    @Override
    public Object productElement(int n) {
        return switch (n) {
            case 0 -> udfs;
            case 1 -> resultAttrs;
            case 2 -> child;
            default -> throw new IndexOutOfBoundsException(n);
        };
    }
}
