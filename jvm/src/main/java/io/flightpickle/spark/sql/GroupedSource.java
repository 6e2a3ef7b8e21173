package io.flightpickle.spark.sql;

import java.io.Serializable;
import java.util.Iterator;
import java.util.List;
import java.util.Optional;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.UnsafeProjection;

/**
 * How a grouped operator's sorted child rows go to the service, one group per batch: made on the
 * driver, sent with the tasks, and turned into projections on the executors.
 */
interface GroupedSource extends Serializable {

    /** The names of the input columns the service reads each group's key from; none when it needs none. */
    List<String> keyNames();

    /** The child's sorted rows as the service's input rows, with where each group ends. */
    GroupedRows rows(Iterator<InternalRow> sorted);

    /**
     * For an operator whose service answers each group with one row of values (an aggregate): the
     * projection of the group's key followed by that row onto the operator's output. Empty when
     * the service's rows are the output themselves.
     */
    Optional<UnsafeProjection> keyedResultProjection();
}
