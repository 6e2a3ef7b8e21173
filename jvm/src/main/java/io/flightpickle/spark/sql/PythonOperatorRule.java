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
 * Spark's Python operators that flightpickle runs ({@code ArrowEvalPythonExec},
 * {@code MapInArrowExec}, {@code MapInPandasExec}, {@code FlatMapGroupsInPandasExec},
 * {@code FlatMapGroupsInArrowExec} and {@code ArrowAggregatePythonExec}) with
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
        boolean replaces = FlightPickleConf.replacesPythonOperators(SparkShim.sessionTransport());
        return replaces ? replace(plan, new Stage()) : plan;
    }

    /**
     * Replaces bottom up, at most one operator per stage: a task streams through one executor
     * service worker per flightpickle operator it runs, and a service has one worker per core, so
     * two operators in one task (stacked, or on both sides of a join without an exchange between)
     * could each hold a worker while waiting for the other's. The first one met keeps the stage.
     */
    private SparkPlan replace(SparkPlan plan, Stage stage) {
        List<SparkPlan> children = new ArrayList<>();
        boolean changed = false;
        for (SparkPlan child : CollectionConverters.asJava(plan.children())) {
            SparkPlan replaced = replace(child, SparkShim.startsStage(child) ? new Stage() : stage);
            changed |= replaced != child;
            children.add(replaced);
        }
        SparkPlan withChildren = changed ? plan.withNewChildren(SparkShim.seq(children)) : plan;
        Optional<SparkShim.Replacement> replacement = SparkShim.replacementFor(withChildren);
        if (replacement.isEmpty()) {
            return withChildren;
        }
        SparkShim.Replacement chosen = replacement.get();
        if (chosen.replacement().isPresent() && stage.streams) {
            chosen = SparkShim.Replacement.fallback(withChildren, "another flightpickle operator runs in the same"
                    + " tasks, and a task streams through one executor service worker at a time");
        }
        if (chosen.replacement().isEmpty()) {
            logFallback(chosen);
            return withChildren;
        }
        stage.streams = true;
        return chosen.replacement().get();
    }

    /** Whether a flightpickle operator already runs in the tasks of the stage being replaced. */
    private static final class Stage {
        boolean streams;
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
