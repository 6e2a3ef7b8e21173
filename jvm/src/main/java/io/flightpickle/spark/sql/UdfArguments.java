package io.flightpickle.spark.sql;

import java.io.Serializable;
import org.apache.spark.sql.catalyst.expressions.Attribute;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.UnsafeProjection;
import scala.collection.immutable.Seq;

/**
 * A scalar UDF's argument expressions over its child's rows, sent to executors and turned into a
 * projection there (projections are code-generated per JVM and not serializable).
 */
record UdfArguments(Seq<Expression> expressions, Seq<Attribute> childOutput) implements Serializable {

    UnsafeProjection projection() {
        return SparkShim.argumentProjection(expressions, childOutput);
    }
}
