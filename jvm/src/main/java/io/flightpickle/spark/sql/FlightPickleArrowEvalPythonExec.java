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
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.Metadata;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import scala.collection.immutable.IndexedSeq;
import scala.collection.immutable.Seq;
import scala.jdk.javaapi.CollectionConverters;

/**
 * Scalar Python UDFs (the Arrow-batched {@code udf}, or scalar {@code pandas_udf}s) through the
 * flightpickle executor service, in place of Spark's {@code ArrowEvalPythonExec}: the child's rows
 * followed by each UDF's value for each, in the child's order. Only the UDFs' arguments go to the
 * service; the rows wait in the task until their values come back (see {@link StreamedRows}).
 */
public final class FlightPickleArrowEvalPythonExec extends FlightPickleStreamExec {

    private static final long serialVersionUID = 1L;

    private final Seq<PythonUDF> udfs;
    private final Seq<Attribute> resultAttrs;

    /** @param udfs the UDFs of the operator replaced, kept as Spark's operator keeps them */
    public FlightPickleArrowEvalPythonExec(Seq<PythonUDF> udfs, Seq<Attribute> resultAttrs, SparkPlan child,
            StreamedFunction function) {
        super(child, childColumnsThen(child, resultAttrs), function);
        this.udfs = udfs;
        this.resultAttrs = resultAttrs;
    }

    /** The child's columns followed by the UDFs' values, as Spark's operator outputs them. */
    private static Seq<Attribute> childColumnsThen(SparkPlan child, Seq<Attribute> resultAttrs) {
        List<Attribute> all = new ArrayList<>(CollectionConverters.asJava(child.output()));
        all.addAll(CollectionConverters.asJava(resultAttrs));
        return CollectionConverters.asScala(all).toList();
    }

    @Override
    public String nodeName() {
        return "FlightPickleArrowEvalPython";
    }

    /** Only the UDFs' values: the child's columns pass through. */
    @Override
    public AttributeSet producedAttributes() {
        return attributeSet(resultAttrs);
    }

    /**
     * Each task sends the arguments of every UDF (their columns in the order {@link UdfBundle}
     * numbers them; a single UDF's are its arguments) and gets one column per UDF back.
     */
    @Override
    public RDD<InternalRow> doExecute() {
        List<PythonUDF> all = CollectionConverters.asJava(udfs);
        List<Expression> argumentExpressions = UdfBundle.arguments(all);
        List<StructField> argumentFields = new ArrayList<>();
        for (Expression argument : argumentExpressions) {
            argumentFields.add(field(argumentFields.size(), argument.dataType()));
        }
        List<StructField> resultFields = new ArrayList<>();
        for (PythonUDF udf : all) {
            resultFields.add(field(resultFields.size(), udf.dataType()));
        }
        return streamPartitions(new StructType(argumentFields.toArray(new StructField[0])),
                new StructType(resultFields.toArray(new StructField[0])),
                new UdfArguments(CollectionConverters.asScala(argumentExpressions).toList(), child.output()));
    }

    private static StructField field(int position, DataType type) {
        return new StructField("_" + position, type, true, Metadata.empty());
    }

    @Override
    public SparkPlan withNewChildrenInternal(IndexedSeq<SparkPlan> newChildren) {
        return new FlightPickleArrowEvalPythonExec(udfs, resultAttrs, newChildren.apply(0), function);
    }

    @Override
    protected List<Object> productElements() {
        return List.of(udfs, resultAttrs, child);
    }
}
