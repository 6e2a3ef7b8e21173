package io.flightpickle.spark.sql;

import java.util.Optional;
import java.util.Set;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.DecimalType;
import org.apache.spark.sql.types.MapType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * The Spark types whose values the executor service converts exactly as PySpark's worker does:
 * it calls PySpark's own conversions, which need nothing beyond the Arrow type (see
 * {@code flightpickle/executor/spark_kinds.py}). Others (user-defined types, whose Python class
 * the Arrow type does not name; variants, intervals, times, geometries) keep Spark's operator.
 */
final class StreamedTypes {

    private static final Set<DataType> ATOMIC = Set.of(DataTypes.BooleanType, DataTypes.ByteType,
            DataTypes.ShortType, DataTypes.IntegerType, DataTypes.LongType, DataTypes.FloatType,
            DataTypes.DoubleType, DataTypes.StringType, DataTypes.BinaryType, DataTypes.DateType,
            DataTypes.TimestampType, DataTypes.TimestampNTZType);

    private StreamedTypes() {}

    /** The part of {@code type} the service cannot take, in Spark's words; empty if it takes all of it. */
    static Optional<String> unsupportedPart(DataType type) {
        if (ATOMIC.contains(type) || type instanceof DecimalType) {
            return Optional.empty();
        }
        if (type instanceof ArrayType array) {
            return unsupportedPart(array.elementType());
        }
        if (type instanceof MapType map) {
            return unsupportedPart(map.keyType()).or(() -> unsupportedPart(map.valueType()));
        }
        if (type instanceof StructType struct) {
            for (StructField field : struct.fields()) {
                Optional<String> part = unsupportedPart(field.dataType());
                if (part.isPresent()) {
                    return part;
                }
            }
            return Optional.empty();
        }
        return Optional.of(type.simpleString());
    }

    /** Why a value of {@code type} as {@code what} cannot go through the service, if it cannot. */
    static Optional<String> whyNot(DataType type, String what) {
        return unsupportedPart(type).map(part -> what + " of type " + type.simpleString()
                + (part.equals(type.simpleString()) ? "" : " (its " + part + ")") + " is not supported yet");
    }
}
