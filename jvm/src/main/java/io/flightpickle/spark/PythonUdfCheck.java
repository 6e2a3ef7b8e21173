package io.flightpickle.spark;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.apache.spark.sql.AnalysisException;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.PlanExpression;
import org.apache.spark.sql.catalyst.expressions.PythonFuncExpression;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import scala.Option;
import scala.collection.immutable.Map$;
import scala.jdk.javaapi.CollectionConverters;
import scala.runtime.AbstractFunction1;
import scala.runtime.BoxedUnit;

/**
 * The analysis check over every Python UDF in a plan (scalar, pandas, grouped, map, UDTF: every
 * {@link PythonFuncExpression}, in subqueries too). It runs on the driver, or on a Spark Connect
 * server, before anything is planned or any task runs; a refused UDF fails the query with an
 * {@link AnalysisException} naming it.
 */
final class PythonUdfCheck extends AbstractFunction1<LogicalPlan, BoxedUnit> {

    private final CommandCheck check;

    PythonUdfCheck(CommandCheck check) {
        this.check = check;
    }

    @Override
    public BoxedUnit apply(LogicalPlan plan) {
        for (PythonFuncExpression udf : pythonUdfs(plan)) {
            Optional<String> refusal = check.refusal(udf.name(), PythonCommands.bytes(udf.func()));
            if (refusal.isPresent()) {
                throwUnchecked(analysisError(refusal.get()));
            }
        }
        return BoxedUnit.UNIT;
    }

    static List<PythonFuncExpression> pythonUdfs(LogicalPlan plan) {
        List<PythonFuncExpression> found = new ArrayList<>();
        collectFromPlan(plan, found);
        return found;
    }

    private static void collectFromPlan(LogicalPlan plan, List<PythonFuncExpression> found) {
        for (Expression expression : CollectionConverters.asJava(plan.expressions())) {
            collectFromExpression(expression, found);
        }
        for (LogicalPlan child : CollectionConverters.asJava(plan.children())) {
            collectFromPlan(child, found);
        }
    }

    private static void collectFromExpression(Expression expression, List<PythonFuncExpression> found) {
        if (expression instanceof PythonFuncExpression udf) {
            found.add(udf);
        }
        if (expression instanceof PlanExpression<?> subquery && subquery.plan() instanceof LogicalPlan plan) {
            collectFromPlan(plan, found);
        }
        for (Expression child : CollectionConverters.asJava(expression.children())) {
            collectFromExpression(child, found);
        }
    }

    /**
     * Throws a checked exception from a Scala function, which declares none: Scala has no checked
     * exceptions, and Spark's analyser expects an AnalysisException to come out of check rules.
     */
    @SuppressWarnings("unchecked")
    private static <E extends Throwable> void throwUnchecked(Throwable error) throws E {
        throw (E) error;
    }

    static AnalysisException analysisError(String message) {
        return new AnalysisException(message, Option.empty(), Option.empty(), Option.empty(), Option.empty(),
                Map$.MODULE$.empty(), new org.apache.spark.QueryContext[0]);
    }
}
