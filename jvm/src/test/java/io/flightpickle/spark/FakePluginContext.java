package io.flightpickle.spark;

import com.codahale.metrics.MetricRegistry;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.spark.SparkConf;
import org.apache.spark.api.plugin.DriverPlugin;
import org.apache.spark.api.plugin.PluginContext;
import org.apache.spark.resource.ResourceInformation;

/**
 * An executor's plugin context whose messages reach a driver plugin the way Spark's RPC delivers
 * them: serialized, then handed to {@link DriverPlugin#receive}, whose exception becomes the
 * sender's.
 */
final class FakePluginContext implements PluginContext {

    private final String executorId;
    private final DriverPlugin driver;
    final List<Object> replies = new ArrayList<>();
    final MetricRegistry metrics = new MetricRegistry();

    FakePluginContext(String executorId, DriverPlugin driver) {
        this.executorId = executorId;
        this.driver = driver;
    }

    @Override
    public Object ask(Object message) throws Exception {
        Object reply = driver.receive(overTheWire(message));
        replies.add(reply);
        return reply;
    }

    @Override
    public void send(Object message) throws IOException {
        throw new UnsupportedOperationException("the plugin only asks");
    }

    @Override
    public String executorID() {
        return executorId;
    }

    @Override
    public String hostname() {
        return "localhost";
    }

    @Override
    public MetricRegistry metricRegistry() {
        return metrics;
    }

    @Override
    public SparkConf conf() {
        throw new UnsupportedOperationException("no SparkConf outside Spark");
    }

    @Override
    public Map<String, ResourceInformation> resources() {
        return Map.of();
    }

    static Object overTheWire(Object message) throws IOException, ClassNotFoundException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
            out.writeObject(message);
        }
        try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
            return in.readObject();
        }
    }
}
