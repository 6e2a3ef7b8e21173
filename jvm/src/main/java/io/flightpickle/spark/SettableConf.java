package io.flightpickle.spark;

import java.util.HashMap;
import java.util.Map;
import org.apache.spark.SparkConf;
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
