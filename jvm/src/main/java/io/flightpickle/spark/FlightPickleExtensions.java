package io.flightpickle.spark;

import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.SparkSessionExtensions;
import io.flightpickle.spark.sql.PythonOperatorRule;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.execution.ColumnarRule;
import scala.Function1;
import scala.runtime.AbstractFunction1;
import scala.runtime.BoxedUnit;

/**
 * The SQL extension of the plugin ({@code spark.sql.extensions}, which the driver plugin appends
 * to): a check rule that applies the command policy to every Python UDF at analysis, and, with
 * {@code spark.flightpickle.transport=local} or {@code remote}, the physical rule that runs Python operators through
 * the executor service ({@link PythonOperatorRule}).
 */
public final class FlightPickleExtensions extends AbstractFunction1<SparkSessionExtensions, BoxedUnit> {

    @Override
    public BoxedUnit apply(SparkSessionExtensions extensions) {
        extensions.injectCheckRule(new CheckRuleBuilder());
        extensions.injectColumnar(new OperatorRuleBuilder());
        return BoxedUnit.UNIT;
    }

    /**
     * Spark's own operators stay unless the application started with the local transport (only
     * then do executors run the service); a session may still go back to Spark's operators by
     * setting {@code spark.flightpickle.transport=spark} at run time.
     */
    private static final class OperatorRuleBuilder extends AbstractFunction1<SparkSession, ColumnarRule> {

        @Override
        public ColumnarRule apply(SparkSession session) {
            FlightPickleConf conf = FlightPickleConf.from(SettableConf.of(session.sparkContext().conf()).all());
            return conf.replacesPythonOperators() ? new PythonOperatorRule.Columnar() : new ColumnarRule();
        }
    }

    /** Builds the rule per session; the state is the application's, from the driver plugin. */
    private static final class CheckRuleBuilder
            extends AbstractFunction1<SparkSession, Function1<LogicalPlan, BoxedUnit>> {

        @Override
        public Function1<LogicalPlan, BoxedUnit> apply(SparkSession session) {
            DriverState state = DriverState.currentOrStart(SettableConf.of(session.sparkContext().conf()).all());
            return new PythonUdfCheck(state.check);
        }
    }
}
