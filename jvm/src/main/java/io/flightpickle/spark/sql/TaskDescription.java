package io.flightpickle.spark.sql;

import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import org.apache.spark.TaskContext;
import org.apache.spark.resource.ResourceInformation;

/**
 * The running task's context as a JSON object, sent with each stream (input schema metadata
 * {@link #KEY}) so that {@code pyspark.TaskContext.get()} in the service answers as in PySpark's
 * own worker: the same fields, named as PySpark's worker reads them.
 */
final class TaskDescription {

    static final String KEY = "flightpickle.spark.task";

    private TaskDescription() {}

    static String json(TaskContext task) {
        StringBuilder json = new StringBuilder("{");
        json.append("\"stageId\":").append(task.stageId())
                .append(",\"partitionId\":").append(task.partitionId())
                .append(",\"attemptNumber\":").append(task.attemptNumber())
                .append(",\"taskAttemptId\":").append(task.taskAttemptId())
                .append(",\"cpus\":").append(task.cpus())
                // A string: the amount is a decimal (a fraction of a core), which JSON numbers would round.
                .append(",\"cpuAmount\":").append(UdfBundle.jsonString(task.cpuAmount().bigDecimal().toPlainString()))
                .append(",\"resources\":");
        appendResources(json, task.resourcesJMap());
        json.append(",\"localProperties\":");
        appendProperties(json, task.getLocalProperties());
        return json.append('}').toString();
    }

    private static void appendResources(StringBuilder json, Map<String, ResourceInformation> resources) {
        json.append('{');
        String separator = "";
        for (Map.Entry<String, ResourceInformation> resource : new TreeMap<>(resources).entrySet()) {
            json.append(separator).append(UdfBundle.jsonString(resource.getKey()))
                    .append(":{\"name\":").append(UdfBundle.jsonString(resource.getValue().name()))
                    .append(",\"addresses\":[");
            String comma = "";
            for (String address : resource.getValue().addresses()) {
                json.append(comma).append(UdfBundle.jsonString(address));
                comma = ",";
            }
            json.append("]}");
            separator = ",";
        }
        json.append('}');
    }

    /** All of the task's local properties, defaults included, as PySpark's worker gets them. */
    private static void appendProperties(StringBuilder json, Properties properties) {
        json.append('{');
        String separator = "";
        for (String name : new java.util.TreeSet<>(properties.stringPropertyNames())) {
            json.append(separator).append(UdfBundle.jsonString(name)).append(':')
                    .append(UdfBundle.jsonString(properties.getProperty(name)));
            separator = ",";
        }
        json.append('}');
    }
}
