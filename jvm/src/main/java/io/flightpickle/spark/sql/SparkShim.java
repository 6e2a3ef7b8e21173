package io.flightpickle.spark.sql;

import io.flightpickle.ExecutorStream;
import io.flightpickle.spark.FlightPickleConf;
import java.nio.file.Path;
import java.util.Optional;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.api.python.PythonBroadcast;
import org.apache.spark.broadcast.Broadcast;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.types.pojo.Schema;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.catalyst.expressions.Attribute;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.NamedExpression;
import org.apache.spark.sql.catalyst.expressions.aggregate.AggregateExpression;
import org.apache.spark.sql.catalyst.expressions.PythonUDF;
import org.apache.spark.sql.catalyst.expressions.UnsafeProjection;
import org.apache.spark.sql.execution.SparkPlan;
import org.apache.spark.sql.execution.arrow.ArrowWriter;
import org.apache.spark.sql.execution.python.ArrowAggregatePythonExec;
import org.apache.spark.sql.execution.python.ArrowEvalPythonExec;
import org.apache.spark.sql.execution.python.ArrowEvalPythonUDTFExec;
import org.apache.spark.sql.execution.python.ArrowWindowPythonExec;
import org.apache.spark.sql.execution.python.BatchEvalPythonExec;
import org.apache.spark.sql.execution.python.BatchEvalPythonUDTFExec;
import org.apache.spark.sql.execution.python.FlatMapCoGroupsInBatchExec;
import org.apache.spark.sql.execution.python.FlatMapGroupsInArrowExec;
import org.apache.spark.sql.execution.python.FlatMapGroupsInBatchExec;
import org.apache.spark.sql.execution.python.FlatMapGroupsInPandasExec;
import org.apache.spark.sql.execution.python.streaming.FlatMapGroupsInPandasWithStateExec;
import org.apache.spark.sql.execution.python.MapInArrowExec;
import org.apache.spark.sql.execution.python.MapInPandasExec;
import org.apache.spark.sql.internal.SQLConf;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.ArrowUtils;
import scala.jdk.javaapi.CollectionConverters;

/**
 * Everything that depends on Spark-internal signatures, for Spark 4.3. Spark's Python operators,
 * {@code PythonUDF}, {@code ArrowUtils} and {@code ArrowWriter} are internal and change between
 * minor versions; another Spark version needs another copy of this class and nothing else.
 */
final class SparkShim {

    /** PySpark's eval types ({@code PythonEvalType}) of {@code mapInArrow} and {@code mapInPandas}. */
    static final int MAP_ARROW_ITER_UDF = 207;
    static final int MAP_PANDAS_ITER_UDF = 205;
    /** ... of the Arrow-batched {@code udf} and of the scalar {@code pandas_udf}. */
    static final int ARROW_BATCHED_UDF = 101;
    static final int SCALAR_PANDAS_UDF = 200;
    /** ... of the iterator {@code pandas_udf} ({@code Iterator[pd.Series] -> Iterator[pd.Series]}). */
    static final int SCALAR_PANDAS_ITER_UDF = 204;
    /** ... of {@code applyInPandas} with a function of one DataFrame, or of a key and a DataFrame. */
    static final int GROUPED_MAP_PANDAS_UDF = 201;
    /** ... of {@code applyInArrow} with a function of a table, or of an iterator of record batches. */
    static final int GROUPED_MAP_ARROW_UDF = 209;
    static final int GROUPED_MAP_ARROW_ITER_UDF = 215;
    /** ... of the grouped-aggregate {@code pandas_udf} ({@code pd.Series -> scalar}, in {@code groupBy().agg}). */
    static final int GROUPED_AGG_PANDAS_UDF = 202;
    /**
     * SQL confs that PySpark's worker reads to convert UDF arguments and results, to check what map
     * functions return and to batch a group for the iterator form of {@code applyInArrow}. Each
     * stream's input schema carries their values (metadata {@link #CONVERSION_CONFS_KEY}, a JSON
     * object), and the service acts as PySpark does under them
     * ({@code flightpickle/executor/session_confs.py}).
     */
    private static final List<String> CONVERSION_CONFS = List.of(
            "spark.sql.execution.pandas.convertToArrowArraySafely",
            "spark.sql.legacy.execution.pandas.groupedMap.assignColumnsByName",
            "spark.sql.execution.pyspark.binaryAsBytes",
            "spark.sql.execution.pythonUDF.pandas.intToDecimalCoercionEnabled",
            "spark.sql.execution.pythonUDF.pandas.preferIntExtensionDtype",
            "spark.sql.execution.pythonUDF.mapInBatch.legacy.acceptAnyIterable.enabled",
            "spark.sql.execution.arrow.maxRecordsPerBatch");
    static final String CONVERSION_CONFS_KEY = "flightpickle.spark.conf";
    /** PySpark's legacy pandas conversions for the Arrow-batched udf, which the service does not make. */
    private static final String LEGACY_CONVERSION = "spark.sql.legacy.execution.pythonUDF.pandas.conversion.enabled";

    /**
     * Column types of the DataFrames that grouped functions get and return, which pyarrow converts
     * to and from pandas exactly as PySpark does; PySpark converts dates, timestamps, decimals and
     * nested types its own way, so those operators stay Spark's for now.
     */
    private static final List<DataType> FRAME_TYPES = List.of(DataTypes.BooleanType, DataTypes.ByteType,
            DataTypes.ShortType, DataTypes.IntegerType, DataTypes.LongType, DataTypes.FloatType,
            DataTypes.DoubleType, DataTypes.StringType, DataTypes.BinaryType);

    private SparkShim() {}

    /** A replacement for {@code plan}, or why there is none; empty for operators not handled at all. */
    static Optional<Replacement> replacementFor(SparkPlan plan) {
        if (plan instanceof MapInArrowExec map) {
            return Optional.of(mapInBatch(map, map.func(), map.isBarrier(), map.profile().isDefined(),
                    MAP_ARROW_ITER_UDF, ExecutorStream.Kind.MAP_ARROW));
        }
        if (plan instanceof MapInPandasExec map) {
            return Optional.of(mapInBatch(map, map.func(), map.isBarrier(), map.profile().isDefined(),
                    MAP_PANDAS_ITER_UDF, ExecutorStream.Kind.MAP_PANDAS));
        }
        if (plan instanceof ArrowEvalPythonExec eval) {
            return Optional.of(arrowEval(eval));
        }
        if (plan instanceof FlatMapGroupsInPandasExec grouped) {
            return Optional.of(groupedMap(grouped, FlightPickleFlatMapGroupsExec.Api.PANDAS));
        }
        if (plan instanceof FlatMapGroupsInArrowExec grouped) {
            return Optional.of(groupedMap(grouped, FlightPickleFlatMapGroupsExec.Api.ARROW));
        }
        if (plan instanceof ArrowAggregatePythonExec aggregate) {
            return Optional.of(groupedAggregate(aggregate));
        }
        if (hasNoFlightPickleOperator(plan)) {
            return Optional.of(Replacement.fallback(plan, "flightpickle has no operator for it yet"));
        }
        return Optional.empty();
    }

    /**
     * Spark 4.3's other Python operators, which keep Spark's operator with the reason logged:
     * cogroup's {@code applyInPandas} and {@code applyInArrow},
     * {@code applyInPandasWithState}, the window {@code pandas_udf} ({@code over(window)}), pickled
     * (non-Arrow) {@code udf}s and UDTFs.
     * A Python operator left out here would keep Spark's without a word.
     */
    private static boolean hasNoFlightPickleOperator(SparkPlan plan) {
        return plan instanceof FlatMapGroupsInBatchExec || plan instanceof FlatMapCoGroupsInBatchExec
                || plan instanceof FlatMapGroupsInPandasWithStateExec || plan instanceof ArrowWindowPythonExec || plan instanceof BatchEvalPythonExec
                || plan instanceof ArrowEvalPythonUDTFExec || plan instanceof BatchEvalPythonUDTFExec;
    }

    /**
     * {@code applyInPandas} and {@code applyInArrow}: the function through the service, one group
     * per batch. Spark 4.3's operators have no barrier mode or resource profile to refuse; the
     * stateful and cogrouped variants are other operators, which stay Spark's.
     */
    private static Replacement groupedMap(FlatMapGroupsInBatchExec grouped, FlightPickleFlatMapGroupsExec.Api api) {
        SparkPlan plan = (SparkPlan) grouped;
        ExecutorStream.Kind kind = grouped.func() instanceof PythonUDF udf ? groupedMapKind(api, udf.evalType()) : null;
        if (kind == null) {
            return Replacement.fallback(plan, "its function is not a Python UDF of eval type "
                    + (api == FlightPickleFlatMapGroupsExec.Api.PANDAS ? String.valueOf(GROUPED_MAP_PANDAS_UDF)
                            : GROUPED_MAP_ARROW_UDF + " or " + GROUPED_MAP_ARROW_ITER_UDF));
        }
        GroupedInput.Result input = GroupedInput.of(grouped.groupingAttributes(), grouped.child().output());
        if (input.input().isEmpty()) {
            return Replacement.fallback(plan, input.reason());
        }
        Optional<String> unsupported = api == FlightPickleFlatMapGroupsExec.Api.PANDAS
                ? unsupportedFrameColumn(input.input().get().data(), "a data column")
                        .or(() -> unsupportedFrameColumn(grouped.output(), "a result column"))
                // No pandas in between: the function gets and returns Arrow data as Spark makes it.
                : unsupportedColumn(input.input().get().data(), "its data column ")
                        .or(() -> unsupportedColumn(grouped.output(), "its result column "));
        if (unsupported.isPresent()) {
            return Replacement.fallback(plan, unsupported.get());
        }
        StreamedFunction.Result function = streamedFunction((PythonUDF) grouped.func(), kind);
        if (function.function().isEmpty()) {
            return Replacement.fallback(plan, function.reason());
        }
        return Replacement.of(new FlightPickleFlatMapGroupsExec(grouped.groupingAttributes(), grouped.func(),
                grouped.output(), grouped.child(), api, function.function().get()));
    }

    /** The service's kind for a grouped map function of {@code evalType}; null for one it has none for. */
    private static ExecutorStream.Kind groupedMapKind(FlightPickleFlatMapGroupsExec.Api api, int evalType) {
        if (api == FlightPickleFlatMapGroupsExec.Api.PANDAS) {
            return evalType == GROUPED_MAP_PANDAS_UDF ? ExecutorStream.Kind.GROUPED_MAP_PANDAS : null;
        }
        return switch (evalType) {
            case GROUPED_MAP_ARROW_UDF -> ExecutorStream.Kind.GROUPED_MAP_ARROW;
            case GROUPED_MAP_ARROW_ITER_UDF -> ExecutorStream.Kind.GROUPED_MAP_ARROW_ITER;
            default -> null;
        };
    }

    /**
     * {@code groupBy(...).agg(...)} of one grouped-aggregate {@code pandas_udf} with positional
     * arguments: through the service, one group per batch. Several UDFs in one aggregate, keyword
     * arguments, chains, session windows, {@code DISTINCT} and {@code FILTER} stay Spark's.
     */
    private static Replacement groupedAggregate(ArrowAggregatePythonExec aggregate) {
        if (aggregate.evalType() != GROUPED_AGG_PANDAS_UDF) {
            return Replacement.fallback(aggregate, "eval type " + aggregate.evalType() + " is not supported yet");
        }
        if (aggregate.sessionWindowOption().isDefined()) {
            return Replacement.fallback(aggregate, "session windows are not supported yet");
        }
        List<AggregateExpression> aggregates = CollectionConverters.asJava(aggregate.aggExpressions());
        if (aggregates.size() != 1) {
            return Replacement.fallback(aggregate, "several pandas_udfs in one aggregation are not supported yet");
        }
        AggregateExpression only = aggregates.get(0);
        if (only.isDistinct() || only.filter().isDefined()
                || !(only.aggregateFunction() instanceof org.apache.spark.sql.catalyst.expressions.PythonUDAF udf)) {
            return Replacement.fallback(aggregate, "DISTINCT or FILTER in a pandas_udf aggregation is not supported yet");
        }
        Optional<String> unsupported = unsupportedConversionSettings()
                .or(() -> StreamedTypes.whyNot(udf.dataType(), "its return type"));
        for (Expression argument : CollectionConverters.asJava(udf.children())) {
            if (unsupported.isPresent()) {
                break;
            }
            unsupported = argument instanceof org.apache.spark.sql.catalyst.expressions.NamedArgumentExpression
                    || argument.exists(e -> e instanceof org.apache.spark.sql.catalyst.expressions.PythonFuncExpression)
                    ? Optional.of("keyword arguments and Python UDFs as arguments are not supported yet")
                    : StreamedTypes.whyNot(argument.dataType(), "an argument");
        }
        if (unsupported.isPresent()) {
            return Replacement.fallback(aggregate, unsupported.get());
        }
        StreamedFunction.Result function = StreamedFunction.of(io.flightpickle.spark.PythonCommands.bytes(udf.func()),
                udf.func().broadcastVars(), ExecutorStream.Kind.GROUPED_AGG_PANDAS);
        if (function.function().isEmpty()) {
            return Replacement.fallback(aggregate, function.reason());
        }
        return Replacement.of(new FlightPickleArrowAggregatePythonExec(aggregate.groupingExpressions(),
                aggregate.aggExpressions(), aggregate.resultExpressions(), aggregate.child(), function.function().get()));
    }

    /** Spark's own operator for the same aggregation, asked what it requires of its child. */
    static ArrowAggregatePythonExec sparkAggregate(scala.collection.immutable.Seq<NamedExpression> grouping,
            scala.collection.immutable.Seq<AggregateExpression> aggregates,
            scala.collection.immutable.Seq<NamedExpression> results, SparkPlan child) {
        return new ArrowAggregatePythonExec(grouping, aggregates, results, child, GROUPED_AGG_PANDAS_UDF);
    }

    private static Optional<String> unsupportedFrameColumn(scala.collection.immutable.Seq<Attribute> columns,
            String what) {
        for (Attribute column : CollectionConverters.asJava(columns)) {
            if (!FRAME_TYPES.contains(column.dataType())) {
                return Optional.of(what + " (" + column.name() + ") of type " + column.dataType().simpleString()
                        + " is not supported yet");
            }
        }
        return Optional.empty();
    }

    /**
     * Spark's own operator for the same grouping, asked what it requires of its child, so that
     * flightpickle's requires the same of it whatever this Spark version requires.
     */
    static SparkPlan sparkGroupedMap(FlightPickleFlatMapGroupsExec.Api api,
            scala.collection.immutable.Seq<Attribute> grouping, Expression func,
            scala.collection.immutable.Seq<Attribute> output, SparkPlan child) {
        return api == FlightPickleFlatMapGroupsExec.Api.PANDAS
                ? new FlatMapGroupsInPandasExec(grouping, func, output, child)
                : new FlatMapGroupsInArrowExec(grouping, func, output, child);
    }

    /**
     * One UDF with positional arguments streams its own sealed frame (which may travel as a
     * broadcast); several UDFs, chains and keyword arguments stream as one {@link UdfBundle}, which
     * the service evaluates as PySpark does, all in one call per batch.
     */
    private static Replacement arrowEval(ArrowEvalPythonExec eval) {
        ExecutorStream.Kind kind = switch (eval.evalType()) {
            case ARROW_BATCHED_UDF -> ExecutorStream.Kind.SCALAR_ROW;
            case SCALAR_PANDAS_UDF -> ExecutorStream.Kind.SCALAR_PANDAS;
            case SCALAR_PANDAS_ITER_UDF -> ExecutorStream.Kind.SCALAR_PANDAS_ITER;
            default -> null;
        };
        if (kind == null) {
            return Replacement.fallback(eval, "eval type " + eval.evalType() + " is not supported yet");
        }
        Optional<String> settings = unsupportedConversionSettings();
        if (settings.isPresent()) {
            return Replacement.fallback(eval, settings.get());
        }
        List<PythonUDF> udfs = CollectionConverters.asJava(eval.udfs());
        if (kind == ExecutorStream.Kind.SCALAR_PANDAS_ITER
                && (udfs.size() != 1 || UdfBundle.needsBundle(udfs.get(0)))) {
            // PySpark's worker takes one iterator UDF per operator, with positional arguments.
            return Replacement.fallback(eval, "an iterator pandas_udf streams alone, with positional arguments only");
        }
        for (PythonUDF udf : udfs) {
            Optional<String> unsupported = unsupportedScalar(udf);
            if (unsupported.isPresent()) {
                return Replacement.fallback(eval, (udfs.size() == 1 ? "" : "its UDF " + udf.name() + ": ")
                        + unsupported.get());
            }
        }
        StreamedFunction.Result function = udfs.size() == 1 && !UdfBundle.needsBundle(udfs.get(0))
                ? streamedFunction(udfs.get(0), kind)
                : UdfBundle.of(udfs, kind);
        if (function.function().isEmpty()) {
            return Replacement.fallback(eval, function.reason());
        }
        return Replacement.of(new FlightPickleArrowEvalPythonExec(eval.udfs(), eval.resultAttrs(), eval.child(),
                function.function().get()));
    }

    /** Why the service cannot evaluate {@code udf} (its column's type, its arguments' types), if it cannot. */
    private static Optional<String> unsupportedScalar(PythonUDF udf) {
        Optional<String> result = StreamedTypes.whyNot(udf.dataType(), "its return type");
        if (result.isPresent()) {
            return result;
        }
        Optional<String> layout = UdfBundle.unsupportedArguments(udf);
        if (layout.isPresent()) {
            return layout;
        }
        for (Expression argument : UdfBundle.arguments(udf)) {
            Optional<String> type = StreamedTypes.whyNot(argument.dataType(), "an argument");
            if (type.isPresent()) {
                return type;
            }
        }
        return Optional.empty();
    }

    /** The values of {@code attributes} from rows of {@code input}. */
    @SuppressWarnings("unchecked")
    static UnsafeProjection projection(
            scala.collection.immutable.Seq<Attribute> attributes, scala.collection.immutable.Seq<Attribute> input) {
        // Scala's Seq is covariant; Java's generics are not.
        return UnsafeProjection.create((scala.collection.immutable.Seq<Expression>) (Object) attributes, input);
    }

    static StructType schemaOf(scala.collection.immutable.Seq<Attribute> attributes) {
        return org.apache.spark.sql.catalyst.types.DataTypeUtils.fromAttributes(attributes);
    }

    /** Why the session's SQL confs ask for conversions the service does not make, if they do. */
    private static Optional<String> unsupportedConversionSettings() {
        String legacy = SQLConf.get().getConfString(LEGACY_CONVERSION, "false").trim();
        return legacy.equalsIgnoreCase("false") ? Optional.empty()
                : Optional.of(LEGACY_CONVERSION + " is " + legacy + "; PySpark's legacy conversions are not supported");
    }

    static UnsafeProjection argumentProjection(
            scala.collection.immutable.Seq<Expression> arguments, scala.collection.immutable.Seq<Attribute> input) {
        return UnsafeProjection.create(arguments, input);
    }

    private static Replacement mapInBatch(SparkPlan map, Expression func, boolean barrier, boolean profiled,
            int evalType, ExecutorStream.Kind kind) {
        if (barrier) {
            return Replacement.fallback(map, "barrier execution mode is not supported yet");
        }
        if (profiled) {
            return Replacement.fallback(map, "stage-level resource profiles are not supported yet");
        }
        if (!(func instanceof PythonUDF udf) || udf.evalType() != evalType) {
            return Replacement.fallback(map, "its function is not a Python UDF of eval type " + evalType);
        }
        SparkPlan child = map.children().head();
        if (kind == ExecutorStream.Kind.MAP_PANDAS) {
            Optional<String> conversions = unsupportedPandasFrames(child, map);
            if (conversions.isPresent()) {
                return Replacement.fallback(map, conversions.get());
            }
        }
        StreamedFunction.Result function = streamedFunction(udf, kind);
        if (function.function().isEmpty()) {
            return Replacement.fallback(map, function.reason());
        }
        return Replacement.of(new FlightPickleMapInBatchExec(func, map.output(), child, function.function().get()));
    }

    /**
     * Why the rows of {@code child} or of {@code map} cannot be the pandas DataFrames PySpark makes
     * of them in the service, if they cannot. {@code mapInArrow} needs no such check: its function
     * gets and returns the Arrow batches as they are.
     */
    private static Optional<String> unsupportedPandasFrames(SparkPlan child, SparkPlan map) {
        Optional<String> settings = unsupportedConversionSettings();
        if (settings.isPresent()) {
            return settings;
        }
        return unsupportedColumn(child.output(), "its input column ")
                .or(() -> unsupportedColumn(map.output(), "its output column "));
    }

    private static Optional<String> unsupportedColumn(scala.collection.immutable.Seq<Attribute> columns, String what) {
        return CollectionConverters.asJava(columns).stream()
                .flatMap(column -> StreamedTypes.whyNot(column.dataType(), what + column.name()).stream())
                .findFirst();
    }

    private static StreamedFunction.Result streamedFunction(PythonUDF udf, ExecutorStream.Kind kind) {
        return StreamedFunction.of(commandBytes(udf), udf.func().broadcastVars(), kind);
    }

    static byte[] commandBytes(PythonUDF udf) {
        return io.flightpickle.spark.PythonCommands.bytes(udf.func());
    }

    /**
     * The local file of a Python broadcast: on the driver the one PySpark wrote, on an executor the
     * copy Spark keeps once the broadcast is fetched (the first task there fetches it).
     */
    static Path broadcastFile(Broadcast<PythonBroadcast> broadcast) {
        return Path.of(broadcast.value().path());
    }

    /** Why Python broadcasts' files cannot be read as PySpark wrote them, if they cannot. */
    static Optional<String> unreadableBroadcastFiles() {
        SparkEnv env = SparkEnv.get();
        if (env != null && env.conf().getBoolean("spark.io.encryption.enabled", false)) {
            return Optional.of("spark.io.encryption.enabled encrypts broadcast files");
        }
        return Optional.empty();
    }

    /** Ends a killed task the way Spark's own operators do (a TaskKilledException with the reason). */
    static void stopIfKilled() {
        TaskContext task = TaskContext.get();
        if (task != null) {
            task.killTaskIfInterrupted();
        }
    }

    /** {@code spark.flightpickle.transport} as the session sees it (set at run time, or the application's). */
    static String sessionTransport() {
        return sessionConf(FlightPickleConf.TRANSPORT).orElse("spark");
    }

    /** {@code spark.flightpickle.executor.uri} as the session sees it (set at run time, or the application's). */
    static Optional<String> sessionExecutorUri() {
        return sessionConf(FlightPickleConf.EXECUTOR_URI);
    }

    /** A conf set in the session, or else the application's (a session's unset goes back to that). */
    private static Optional<String> sessionConf(String key) {
        SparkEnv env = SparkEnv.get();
        String application = env == null ? null : env.conf().get(key, null);
        return Optional.ofNullable(SQLConf.get().getConfString(key, application)).map(String::trim);
    }

    /** What the operators need from the session's SQL conf, read on the driver. */
    static BatchSettings batchSettings() {
        SQLConf conf = SQLConf.get();
        return new BatchSettings(conf.sessionLocalTimeZone(), conf.arrowMaxRecordsPerBatch(),
                conf.arrowUseLargeVarTypes(), conversionConfs(conf));
    }

    /** The conversion confs' values in the session (set, or Spark's defaults) as a JSON object. */
    private static String conversionConfs(SQLConf conf) {
        StringBuilder json = new StringBuilder("{");
        for (String key : CONVERSION_CONFS) {
            String value;
            try {
                value = conf.getConfString(key);
            } catch (java.util.NoSuchElementException notInThisSpark) {
                continue; // the service then takes PySpark's default
            }
            json.append(json.length() == 1 ? "" : ",").append(UdfBundle.jsonString(key)).append(':')
                    .append(UdfBundle.jsonString(value.trim().toLowerCase(java.util.Locale.ROOT)));
        }
        return json.append('}').toString();
    }

    static Schema arrowSchema(StructType schema, BatchSettings settings) {
        return ArrowUtils.toArrowSchema(schema, settings.timeZone(), true, settings.largeVarTypes(), false);
    }

    /** {@link #arrowSchema} with the conversion confs and the task's context (if in a task): what a stream's input batches declare. */
    static Schema inputArrowSchema(StructType schema, BatchSettings settings, TaskContext task) {
        Map<String, String> metadata = task == null ? Map.of(CONVERSION_CONFS_KEY, settings.conversionConfs())
                : Map.of(CONVERSION_CONFS_KEY, settings.conversionConfs(), TaskDescription.KEY, TaskDescription.json(task));
        return new Schema(arrowSchema(schema, settings).getFields(), metadata);
    }

    /** Whether {@code plan}'s rows come from another stage (an exchange, or an adaptive query stage). */
    static boolean startsStage(SparkPlan plan) {
        return plan instanceof org.apache.spark.sql.execution.exchange.Exchange
                || plan instanceof org.apache.spark.sql.execution.adaptive.QueryStageExec;
    }

    static ArrowWriter arrowWriter(VectorSchemaRoot root) {
        return ArrowWriter.create(root);
    }

    static UnsafeProjection toUnsafeRows(StructType schema) {
        return UnsafeProjection.create(schema);
    }

    static org.apache.arrow.memory.BufferAllocator childAllocator(String name) {
        return ArrowUtils.rootAllocator().newChildAllocator(name, 0, Long.MAX_VALUE);
    }

    static scala.collection.immutable.Seq<SparkPlan> seq(java.util.List<SparkPlan> plans) {
        return CollectionConverters.asScala(plans).toList();
    }

    /**
     * @param timeZone the session time zone, which Arrow timestamps carry
     * @param maxRecordsPerBatch {@code spark.sql.execution.arrow.maxRecordsPerBatch}
     * @param largeVarTypes {@code spark.sql.execution.arrow.useLargeVarTypes}
     * @param conversionConfs the confs of PySpark's conversions, a JSON object
     */
    record BatchSettings(String timeZone, int maxRecordsPerBatch, boolean largeVarTypes, String conversionConfs)
            implements java.io.Serializable {}

    /** A flightpickle operator for a Spark one, or the reason Spark's stays. */
    record Replacement(SparkPlan original, Optional<SparkPlan> replacement, String reason) {
        static Replacement of(SparkPlan replacement) {
            return new Replacement(replacement, Optional.of(replacement), "");
        }

        static Replacement fallback(SparkPlan original, String reason) {
            return new Replacement(original, Optional.empty(), reason);
        }
    }
}
