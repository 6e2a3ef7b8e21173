package io.flightpickle.spark;

import java.util.HashMap;
import java.util.Map;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkContext;
import scala.Tuple2;

/**
 * The few conf operations the driver plugin needs, over a SparkConf in Spark and over a map in
 * unit tests: SparkConf cannot be built outside Spark without most of Spark's jars.
 */
interface SettableConf {

    /** Every entry, as a copy. */
    Map<String, String> all();

    void set(String key, String value);

    default String get(String key, String fallback) {
        return all().getOrDefault(key, fallback);
    }

    default boolean contains(String key) {
        return all().containsKey(key);
    }

    /** Spark's prefix of the confs it turns into executors' environment variables. */
    String EXECUTOR_ENV_PREFIX = "spark.executorEnv.";

    /** The environment variables executors are given, by name, as {@code SparkConf.getExecutorEnv} reads them. */
    default Map<String, String> executorEnvironment() {
        Map<String, String> environment = new HashMap<>();
        all().forEach((key, value) -> {
            if (key.startsWith(EXECUTOR_ENV_PREFIX)) {
                environment.put(key.substring(EXECUTOR_ENV_PREFIX.length()), value);
            }
        });
        return environment;
    }

    /** Gives executors started from now on the environment variable {@code name}. */
    default void setExecutorEnvironment(String name, String value) {
        set(EXECUTOR_ENV_PREFIX + name, value);
    }

    /**
     * The conf of a starting SparkContext, whose executor environment goes into both places
     * cluster managers read it from. YARN's and Kubernetes' backends read
     * {@code spark.executorEnv.*} from the conf when they start executors, after the plugins'
     * init. The standalone backend (and local-cluster) builds the executor command from
     * {@code SparkContext.executorEnvs}, which the context copies from the conf before the
     * plugins start: only an entry in that map reaches those executors. The map is
     * {@code private[spark]} in Scala but public in the bytecode; this is flightpickle's only use
     * of it.
     */
    static SettableConf of(SparkContext context) {
        SettableConf conf = of(context.conf());
        return new SettableConf() {
            @Override
            public Map<String, String> all() {
                return conf.all();
            }

            @Override
            public void set(String key, String value) {
                conf.set(key, value);
            }

            @Override
            public boolean contains(String key) {
                return conf.contains(key);
            }

            @Override
            public void setExecutorEnvironment(String name, String value) {
                conf.setExecutorEnvironment(name, value);
                context.executorEnvs().put(name, value);
            }
        };
    }

    static SettableConf of(SparkConf conf) {
        return new SettableConf() {
            @Override
            public Map<String, String> all() {
                Map<String, String> entries = new HashMap<>();
                for (Tuple2<String, String> entry : conf.getAll()) {
                    entries.put(entry._1(), entry._2());
                }
                return entries;
            }

            @Override
            public void set(String key, String value) {
                conf.set(key, value);
            }

            @Override
            public boolean contains(String key) {
                return conf.contains(key);
            }
        };
    }

    static SettableConf of(Map<String, String> entries) {
        return new SettableConf() {
            @Override
            public Map<String, String> all() {
                return new HashMap<>(entries);
            }

            @Override
            public void set(String key, String value) {
                entries.put(key, value);
            }
        };
    }
}
