package io.flightpickle;

import org.apache.arrow.c.ArrowArray;
import org.apache.arrow.c.ArrowSchema;
import org.apache.arrow.c.Data;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.types.pojo.Schema;

/**
 * Turns the structs a result batch was exported into (by Rust, for {@link ExecutorStream#pull}) into
 * a {@link VectorSchemaRoot}, handing the batch's memory back to its producer exactly once on every
 * path, including when Arrow Java cannot read the schema or the array.
 *
 * <p>The schema is imported on its own first, so that a schema Arrow Java refuses is caught while
 * the array is still untouched. Arrow Java's schema import always releases the schema struct.
 * Its array import moves the struct's contents out and marks it released before it reads a buffer,
 * and from then on releases them itself, also when it fails. The array struct is therefore
 * released here on every path: before the move that hands the buffers back, after it the struct is
 * marked released and releasing it does nothing. The imports are told not to close the structs,
 * whose memory belongs to the caller.
 */
final class PulledBatch {

    private PulledBatch() {}

    /**
     * The batch in {@code array} with the schema in {@code schema}, owned by the caller; both structs
     * are released when this returns or throws, and stay the caller's to close.
     */
    static VectorSchemaRoot take(BufferAllocator allocator, ArrowArray array, ArrowSchema schema) {
        try {
            Schema imported = Data.importSchema(allocator, schema, null, false);
            VectorSchemaRoot root = VectorSchemaRoot.create(imported, allocator);
            try {
                Data.importIntoVectorSchemaRoot(allocator, array, root, null, false);
                return root;
            } catch (RuntimeException | Error e) {
                root.close();
                throw e;
            }
        } finally {
            array.release();
        }
    }
}
