package io.flightpickle.spark.sql;

import java.io.Serializable;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.spark.SparkContext;
import org.apache.spark.sql.execution.metric.SQLMetric;
import org.apache.spark.sql.execution.metric.SQLMetrics;
import scala.jdk.javaapi.CollectionConverters;

/**
 * The SQL metrics of a flightpickle operator, shown with it in the Spark UI: batches, rows and
 * Arrow bytes each way, the time tasks waited on the executor service (sending input it was not
 * ready for, and waiting for results: Python's time as the task sees it), and what the service
 * reports of each stream when it ends: the time its worker spent in the function, and whether the
 * worker had the function already (a cache hit) or had to open it (a miss). Created on the driver
 * with the operator; tasks add to them as accumulators.
 */
record StreamMetrics(SQLMetric batchesSent, SQLMetric rowsSent, SQLMetric bytesSent, SQLMetric batchesReceived,
        SQLMetric rowsReceived, SQLMetric bytesReceived, SQLMetric serviceTime, SQLMetric functionTime,
        SQLMetric functionCacheHits, SQLMetric functionCacheMisses) implements Serializable {

    static StreamMetrics create(SparkContext context) {
        return new StreamMetrics(
                SQLMetrics.createMetric(context, "batches sent to Python"),
                SQLMetrics.createMetric(context, "rows sent to Python"),
                SQLMetrics.createSizeMetric(context, "Arrow bytes sent to Python", -1),
                SQLMetrics.createMetric(context, "batches received from Python"),
                SQLMetrics.createMetric(context, "rows received from Python"),
                SQLMetrics.createSizeMetric(context, "Arrow bytes received from Python", -1),
                SQLMetrics.createNanoTimingMetric(context, "time waiting for the executor service", -1),
                SQLMetrics.createNanoTimingMetric(context, "time in the Python function", -1),
                SQLMetrics.createMetric(context, "function cache hits"),
                SQLMetrics.createMetric(context, "function cache misses"));
    }

    /** By the keys Spark's UI and {@code SparkPlan.metrics} expect. */
    scala.collection.immutable.Map<String, SQLMetric> byName() {
        Map<String, SQLMetric> all = new LinkedHashMap<>();
        all.put("batchesSent", batchesSent);
        all.put("rowsSent", rowsSent);
        all.put("bytesSent", bytesSent);
        all.put("batchesReceived", batchesReceived);
        all.put("rowsReceived", rowsReceived);
        all.put("bytesReceived", bytesReceived);
        all.put("serviceTime", serviceTime);
        all.put("functionTime", functionTime);
        all.put("functionCacheHits", functionCacheHits);
        all.put("functionCacheMisses", functionCacheMisses);
        return scala.collection.immutable.Map.from(CollectionConverters.asScala(all));
    }

    void sent(VectorSchemaRoot batch, long nanos) {
        batchesSent.add(1);
        rowsSent.add(batch.getRowCount());
        bytesSent.add(bytes(batch));
        serviceTime.add(nanos);
    }

    void received(VectorSchemaRoot batch) {
        batchesReceived.add(1);
        rowsReceived.add(batch.getRowCount());
        bytesReceived.add(bytes(batch));
    }

    void waited(long nanos) {
        serviceTime.add(nanos);
    }

    /** What the service reported of a stream at its end. */
    void reported(io.flightpickle.ExecutorStream.Stats stats) {
        functionTime.add(stats.functionNanos());
        (stats.functionCached() ? functionCacheHits : functionCacheMisses).add(1);
    }

    private static long bytes(VectorSchemaRoot batch) {
        long total = 0;
        for (FieldVector vector : batch.getFieldVectors()) {
            total += vector.getBufferSize();
        }
        return total;
    }
}
