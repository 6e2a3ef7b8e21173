package io.flightpickle;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.charset.StandardCharsets;
import java.util.List;
import org.apache.arrow.c.ArrowArray;
import org.apache.arrow.c.ArrowSchema;
import org.apache.arrow.c.Data;
import org.apache.arrow.memory.ArrowBuf;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.BigIntVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.Field;
import org.apache.arrow.vector.types.pojo.Schema;
import org.junit.jupiter.api.Test;

/**
 * Importing a pulled result batch on its good and bad paths. The batches are exported by Arrow Java
 * through the plugin's release callbacks (the ones a Rust export has too): the exported buffers
 * stay counted in the allocator until the array struct's release callback runs, so an allocator
 * back at zero proves the callback ran, and ran once (a second run would close buffers twice).
 */
class PulledBatchTest {

    private static final Schema ONE_COLUMN = new Schema(List.of(bigint("x")));
    private static final Schema TWO_COLUMNS = new Schema(List.of(bigint("x"), bigint("y")));

    /** What a test does with the structs of an export, before they are checked released. */
    private interface Take {
        void from(BufferAllocator allocator, ArrowArray array, ArrowSchema schema);
    }

    @Test
    void aGoodBatchComesBackWithItsValuesAndIsReleasedWhenClosed() {
        exportThenTake(ONE_COLUMN, ONE_COLUMN, (allocator, array, schema) -> {
            try (VectorSchemaRoot root = PulledBatch.take(allocator, array, schema)) {
                assertEquals(3, root.getRowCount());
                assertEquals(20L, ((BigIntVector) root.getVector("x")).get(2));
            }
        });
    }

    @Test
    void aSchemaArrowJavaCannotReadHandsTheArrayBackUntouched() {
        try (BufferAllocator elsewhere = new RootAllocator(); ArrowBuf unknownFormat = elsewhere.buffer(2)) {
            unknownFormat.setBytes(0, "?\0".getBytes(StandardCharsets.US_ASCII));
            exportThenTake(ONE_COLUMN, ONE_COLUMN, (allocator, array, schema) -> {
                ArrowSchema.Snapshot tampered = schema.snapshot();
                tampered.format = unknownFormat.memoryAddress();
                schema.save(tampered);
                RuntimeException refused = assertThrows(RuntimeException.class,
                        () -> PulledBatch.take(allocator, array, schema));
                assertEquals(UnsupportedOperationException.class, refused.getClass(), refused.toString());
            });
        }
    }

    @Test
    void anArrayThatDoesNotMatchItsSchemaIsReleasedByTheFailedImport() {
        exportThenTake(ONE_COLUMN, TWO_COLUMNS, (allocator, array, schema) ->
                assertThrows(RuntimeException.class, () -> PulledBatch.take(allocator, array, schema)));
    }

    /**
     * Exports three rows of {@code rows}' columns, described by {@code described}, hands the structs
     * to {@code take}, then checks that both were released and every exported buffer came back.
     */
    private static void exportThenTake(Schema rows, Schema described, Take take) {
        try (BufferAllocator allocator = new RootAllocator()) {
            try (ArrowArray array = ArrowArray.allocateNew(allocator);
                    ArrowSchema schema = ArrowSchema.allocateNew(allocator)) {
                export(allocator, rows, described, array, schema);
                take.from(allocator, array, schema);
                assertEquals(0L, array.snapshot().release, "the array's release callback ran");
                assertEquals(0L, schema.snapshot().release, "the schema's release callback ran");
            }
            assertEquals(0, allocator.getAllocatedMemory(), "every exported buffer came back");
        }
    }

    private static Field bigint(String name) {
        return Field.nullable(name, new ArrowType.Int(64, true));
    }

    /** Exports three rows of {@code rows}' columns into {@code array}, and {@code described} into {@code schema}. */
    private static void export(BufferAllocator allocator, Schema rows, Schema described, ArrowArray array,
            ArrowSchema schema) {
        try (VectorSchemaRoot root = VectorSchemaRoot.create(rows, allocator)) {
            for (var vector : root.getFieldVectors()) {
                BigIntVector column = (BigIntVector) vector;
                column.allocateNew(3);
                for (int row = 0; row < 3; row++) {
                    column.set(row, row * 10L);
                }
                column.setValueCount(3);
            }
            root.setRowCount(3);
            Data.exportVectorSchemaRoot(allocator, root, null, array);
        }
        Data.exportSchema(allocator, described, null, schema);
    }
}
