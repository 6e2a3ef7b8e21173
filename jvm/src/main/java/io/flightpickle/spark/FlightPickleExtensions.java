package io.flightpickle.spark;

import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.SparkSessionExtensions;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import scala.Function1;
import scala.runtime.AbstractFunction1;
import scala.runtime.BoxedUnit;

/**
 * The SQL extension of the plugin ({@code spark.sql.extensions}, which the driver plugin appends
 * to): a check rule that applies the command policy to every Python UDF at analysis.
 */
public final class FlightPickleExtensions extends AbstractFunction1<SparkSessionExtensions, BoxedUnit> {

    @Override
    public BoxedUnit apply(SparkSessionExtensions extensions) {
        extensions.injectCheckRule(new CheckRuleBuilder());
        return BoxedUnit.UNIT;
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
