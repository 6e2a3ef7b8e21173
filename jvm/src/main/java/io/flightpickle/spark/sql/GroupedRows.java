package io.flightpickle.spark.sql;

import java.util.Iterator;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.UnsafeProjection;

/**
 * A task's rows, sorted by their grouping columns, as the data rows the service gets, with where
 * each group ends: {@link StreamedRows} ends an input batch there, so that each batch is one whole
 * group. Groups are runs of equal grouping values compared as unsafe rows, as Spark's own grouped
 * operators cut them.
 *
 * <p>A returned row is valid until the next call (projections reuse their row), which is as long
 * as the batch writer needs it.
 */
final class GroupedRows implements Iterator<InternalRow> {

    private final Iterator<InternalRow> sorted;
    private final UnsafeProjection keyOf;
    private final UnsafeProjection dataOf;
    /**
     * The grouping values of the group the last returned row belongs to: a copy of an unsafe row,
     * held as an {@code InternalRow} (the unsafe row's own type needs Kryo on the compile path).
     */
    private InternalRow groupKey;
    /** The next row, pulled early to see whether the group ends; null when not pulled. */
    private InternalRow lookahead;

    GroupedRows(Iterator<InternalRow> sorted, UnsafeProjection keyOf, UnsafeProjection dataOf) {
        this.sorted = sorted;
        this.keyOf = keyOf;
        this.dataOf = dataOf;
    }

    @Override
    public boolean hasNext() {
        return lookahead != null || sorted.hasNext();
    }

    @Override
    public InternalRow next() {
        InternalRow row = lookahead != null ? lookahead : sorted.next();
        lookahead = null;
        InternalRow key = keyOf.apply(row);
        if (groupKey == null || !key.equals(groupKey)) {
            groupKey = key.copy();
        }
        return dataOf.apply(row);
    }

    /**
     * The grouping values of the row returned last. A new group gets a new copy, so a key taken
     * here stays valid after the group ends.
     */
    InternalRow groupKey() {
        return groupKey;
    }

    /**
     * Whether the row returned last was the last of its group: the input ends, or the next row
     * has other grouping values. The upstream iterator keeps the next row valid until asked for
     * another, which happens only after that row was returned.
     */
    boolean groupEnds() {
        if (lookahead == null) {
            if (!sorted.hasNext()) {
                return true;
            }
            lookahead = sorted.next();
        }
        InternalRow next = keyOf.apply(lookahead);
        return !next.equals(groupKey);
    }
}
