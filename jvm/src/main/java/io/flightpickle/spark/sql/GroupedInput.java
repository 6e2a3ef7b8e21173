package io.flightpickle.spark.sql;

import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.Optional;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.Attribute;
import org.apache.spark.sql.catalyst.expressions.UnsafeProjection;
import org.apache.spark.sql.types.StructType;
import scala.collection.immutable.Seq;
import scala.jdk.javaapi.CollectionConverters;

/**
 * How a grouped map operator's child rows become the service's input: the child's output is the
 * grouping attributes followed by the data attributes (what {@code applyInPandas} plans), each
 * group is the run of sorted rows with equal grouping values, and the function gets the data
 * columns, which hold the grouping columns too: the group's key is read from them by name.
 *
 * <p>Sent to executors with the tasks and turned into {@link GroupedRows} there (projections are
 * code-generated per JVM).
 *
 * @param grouping the grouping attributes
 * @param data the data attributes, the columns of the DataFrame the function gets
 * @param childOutput the child's output: {@code grouping} followed by {@code data}
 * @param keyNames the names of the data columns that hold the grouping attributes, in order
 */
record GroupedInput(Seq<Attribute> grouping, Seq<Attribute> data, Seq<Attribute> childOutput, List<String> keyNames)
        implements GroupedSource {

    /** The input of grouping {@code childOutput} by {@code grouping}, or why the service cannot take it. */
    static Result of(Seq<Attribute> grouping, Seq<Attribute> childOutput) {
        List<Attribute> keys = CollectionConverters.asJava(grouping);
        List<Attribute> all = CollectionConverters.asJava(childOutput);
        if (keys.isEmpty()) {
            return Result.fallback("it has no grouping columns");
        }
        if (all.size() < keys.size() || !semanticallyEqual(all.subList(0, keys.size()), keys)) {
            return Result.fallback("its child's output does not start with the grouping columns");
        }
        List<Attribute> data = all.subList(keys.size(), all.size());
        List<String> names = new ArrayList<>();
        for (Attribute key : keys) {
            Optional<Attribute> column = data.stream().filter(key::semanticEquals).findFirst();
            if (column.isEmpty()) {
                return Result.fallback("it groups by an expression (" + key.name() + ") that is not a column of the"
                        + " data; only grouping by columns is supported yet");
            }
            String name = column.get().name();
            if (data.stream().filter(a -> a.name().equals(name)).count() > 1 || name.indexOf('\0') >= 0) {
                return Result.fallback("its grouping column name " + name + " is not unique among the data columns");
            }
            names.add(name);
        }
        Seq<Attribute> dataSeq = CollectionConverters.asScala(new ArrayList<>(data)).toList();
        return Result.of(new GroupedInput(grouping, dataSeq, childOutput, Collections.unmodifiableList(names)));
    }

    private static boolean semanticallyEqual(List<Attribute> these, List<Attribute> those) {
        for (int i = 0; i < these.size(); i++) {
            if (!these.get(i).semanticEquals(those.get(i))) {
                return false;
            }
        }
        return true;
    }

    /** The schema of the service's input: the data columns. */
    StructType dataSchema() {
        return SparkShim.schemaOf(data);
    }

    /** The child's sorted rows as data rows that say where each group ends. */
    @Override
    public GroupedRows rows(Iterator<InternalRow> sorted) {
        return new GroupedRows(sorted, SparkShim.projection(grouping, childOutput), SparkShim.projection(data, childOutput));
    }

    /** The function's rows are the output. */
    @Override
    public Optional<UnsafeProjection> keyedResultProjection() {
        return Optional.empty();
    }

    /** A grouped input, or the reason there is none. */
    record Result(Optional<GroupedInput> input, String reason) {
        static Result of(GroupedInput input) {
            return new Result(Optional.of(input), "");
        }

        static Result fallback(String reason) {
            return new Result(Optional.empty(), reason);
        }
    }
}
