package io.flightpickle.spark.sql;

import io.flightpickle.spark.FlightPickleConf;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.apache.spark.sql.catalyst.rules.Rule;
import org.apache.spark.sql.execution.ColumnarRule;
import org.apache.spark.sql.execution.SparkPlan;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.jdk.javaapi.CollectionConverters;

/**
 * The physical rule of {@code spark.flightpickle.transport=local} and {@code remote}: replaces
 * Spark's Python operators that flightpickle runs ({@code ArrowEvalPythonExec} for one scalar UDF,
 * {@code MapInArrowExec}, {@code MapInPandasExec} and {@code FlatMapGroupsInPandasExec}) with
 * flightpickle's, and leaves the others, and any it cannot take, to Spark. It runs before Spark
 * inserts its columnar transitions, with and without adaptive execution.
 */
public final class PythonOperatorRule extends Rule<SparkPlan> {

    private static final Logger LOG = LoggerFactory.getLogger(PythonOperatorRule.class);
    /** Fallback messages already logged; bounded, so a long-running session cannot grow it. */
    private static final Set<String> LOGGED = Collections.newSetFromMap(new LinkedHashMap<>() {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Boolean> eldest) {
            return size() > 1024;
        }
    });

    @Override
    public SparkPlan apply(SparkPlan plan) {
        return FlightPickleConf.replacesPythonOperators(SparkShim.sessionTransport()) ? replace(plan) : plan;
    }

    private SparkPlan replace(SparkPlan plan) {
        List<SparkPlan> children = new ArrayList<>();
        boolean changed = false;
        for (SparkPlan child : CollectionConverters.asJava(plan.children())) {
            SparkPlan replaced = replace(child);
            changed |= replaced != child;
            children.add(replaced);
        }
        SparkPlan withChildren = changed ? plan.withNewChildren(SparkShim.seq(children)) : plan;
        Optional<SparkShim.Replacement> replacement = SparkShim.replacementFor(withChildren);
        if (replacement.isEmpty()) {
            return withChildren;
        }
        replacement.filter(r -> r.replacement().isEmpty()).ifPresent(PythonOperatorRule::logFallback);
        return replacement.get().replacement().orElse(withChildren);
    }

    /**
     * Says once why an operator stays Spark's: rules run several times per query (each adaptive
     * stage, each explain), and the same plan would repeat the line.
     */
    private static void logFallback(SparkShim.Replacement fallback) {
        String message = "flightpickle: " + fallback.original().nodeName() + " stays Spark's operator: "
                + fallback.reason();
        boolean first;
        synchronized (LOGGED) {
            first = LOGGED.add(message + "@" + fallback.original().simpleStringWithNodeId());
        }
        if (first) {
            LOG.warn(message);
        }
    }

    /** Puts the rule before Spark's columnar transitions. */
    public static final class Columnar extends ColumnarRule {
        @Override
        public Rule<SparkPlan> preColumnarTransitions() {
            return new PythonOperatorRule();
        }
    }
}
