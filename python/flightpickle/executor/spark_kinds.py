"""Evaluation kinds for PySpark UDF commands: the conversions of PySpark 4.x's
own worker, so that a UDF gives through the service exactly what it gives
through Spark's operators, for every type the plugin sends here.

PySpark's worker converts a SQL UDF's arguments and results with helpers
whose behaviour is the definition of "what Spark does": how a timestamp
becomes a local naive ``datetime`` for a row-wise ``udf`` but a session-time
pandas column for a ``pandas_udf``, how a struct becomes a ``Row``, a dict or
a DataFrame, how a returned value is coerced to a declared ``DecimalType``.
Rather than restate those rules, these kinds call the same helpers
(``pyspark.sql.conversion``, ``pyspark.sql.pandas.types``), with the settings
PySpark's worker reads from the SQL conf: the Spark plugin sends their session
values in the input schema's metadata (:mod:`.session_confs`), and the rest is
read from the schemas themselves: the session time zone is the zone of their
timestamps, large string types are the output's. (The one conf not followed,
PySpark's legacy pandas conversions, keeps Spark's operator.)

These helpers are PySpark internals, as the JVM side's are Spark internals:
this module is the one place that names them.

Each kind is ``(command, spec, batches) -> iterator of output batches`` like
those of :mod:`.kinds`: the scalar kinds for a :class:`~.udf_bundle.UdfBundle`
(one command is a bundle of one), ``mapInPandas`` for a
:class:`~.spark_commands.SparkCommand`.
"""

from __future__ import annotations

from typing import Iterator

import pyarrow as pa

from .kinds import StreamSpec, converted, empty_batch, returned_iterator, takes_two_arguments
from .session_confs import ConversionSettings
from .spark_commands import SparkCommand
from .udf_bundle import UdfBundle

#: The zone PySpark gives Arrow when the stream carries no timestamp, so that
#: none is converted (any zone would do).
NO_ZONE = "UTC"


def session_time_zone(*schemas: pa.Schema) -> str:
    """The session time zone: the zone of the first zone-aware timestamp in
    the schemas (Spark gives every ``TimestampType`` column the session's)."""
    for schema in schemas:
        for field in schema:
            zone = _zone_in(field.type)
            if zone is not None:
                return zone
    return NO_ZONE


def _zone_in(data_type: pa.DataType) -> str | None:
    if pa.types.is_timestamp(data_type):
        return data_type.tz
    for i in range(data_type.num_fields):
        zone = _zone_in(data_type.field(i).type)
        if zone is not None:
            return zone
    return None


def uses_large_types(schema: pa.Schema) -> bool:
    """Whether Spark made ``schema`` with ``spark.sql.execution.arrow.useLargeVarTypes``."""
    return any(_has_large_type(field.type) for field in schema)


def _has_large_type(data_type: pa.DataType) -> bool:
    if pa.types.is_large_string(data_type) or pa.types.is_large_binary(data_type):
        return True
    return any(_has_large_type(data_type.field(i).type) for i in range(data_type.num_fields))


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch``, converted by PySpark, as the declared ``schema``.

    Spark compares the Spark types of what Python returns with the declared
    ones, nested nullability included, and fails the task on a difference (a
    struct returned as a pandas DataFrame has nullable fields, say). Arrow's
    names may differ where Spark's types do not (PySpark builds results with
    UTC timestamps and ``item`` list children; Spark declares the session
    zone and ``element``): those are relabelled to the declared types."""
    if batch.schema.equals(schema):
        return batch
    arrays = []
    for column, field in zip(batch.columns, schema):
        if column.type != field.type:
            _check_spark_type(column.type, field)
            column = converted(lambda c=column, f=field: c.cast(f.type), column, field.type, "the results")
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _check_spark_type(returned: pa.DataType, field: pa.Field) -> None:
    from pyspark.sql.pandas.types import from_arrow_type

    expected, got = from_arrow_type(field.type), from_arrow_type(returned)
    if expected != got:
        raise TypeError(
            f"Invalid schema from the Python function: expected {expected.simpleString()}, got "
            f"{got.simpleString()} ({expected!r} and {got!r} differ, nullability included), as Spark finds it "
            "(ARROW_TYPE_MISMATCH). Declare the type the function returns."
        )


def scalar_row(bundle: UdfBundle, spec: StreamSpec, batches: Iterator[pa.RecordBatch]):
    """The Arrow-batched ``udf``: one call per row with PySpark's Python values
    (``Row`` for structs, local naive ``datetime`` for timestamps, ...), the
    results converted to each UDF's return type as PySpark converts them."""
    from pyspark.sql.conversion import ArrowTableToRowsConversion, LocalDataToArrowConversion
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_type
    from pyspark.worker import verify_result_row_count

    settings = ConversionSettings.of(spec.input_schema)
    to_python = [
        ArrowTableToRowsConversion._create_converter(
            field.dataType, none_on_identity=True, binary_as_bytes=settings.binary_as_bytes
        )
        for field in from_arrow_schema(spec.input_schema)
    ]
    large = uses_large_types(spec.output_schema)
    outputs = [
        (
            call,
            LocalDataToArrowConversion._create_converter(
                call.return_type,
                none_on_identity=True,
                int_to_decimal_coercion_enabled=settings.int_to_decimal_coercion,
            ),
            to_arrow_type(call.return_type, timezone="UTC", prefers_large_types=large),
        )
        for call in bundle.calls
    ]
    for batch in batches:
        columns = [
            ArrowTableToRowsConversion._to_pylist(column) if convert is None else
            [convert(value) for value in ArrowTableToRowsConversion._to_pylist(column)]
            for column, convert in zip(batch.columns, to_python)
        ]
        arrays = []
        for call, to_result, result_type in outputs:
            results = call.per_row(columns, batch.num_rows)
            verify_result_row_count(len(results), batch.num_rows)
            values = results if to_result is None else _to_spark_values(results, to_result, call.return_type)
            arrays.append(_arrow_array(values, result_type, settings.safecheck))
        names = [f"_{i}" for i in range(len(arrays))]
        yield conform(pa.RecordBatch.from_arrays(arrays, names=names), spec.output_schema)


def _to_spark_values(results: list, to_result, return_type) -> list:
    """PySpark's coercion of a udf's results to its return type (rounding
    decimals to their scale, rows and tuples to structs, ...). PySpark fails
    on a value of another type with a bare assertion; here it says which."""
    from pyspark.errors import PySparkValueError

    try:
        return [to_result(value) for value in results]
    except (AssertionError, PySparkValueError, TypeError, ValueError) as error:
        raise TypeError(
            f"the function's results ({_python_types(results)}) do not fit its return type "
            f"{return_type.simpleString()}{': ' + str(error) if str(error) else ''}. "
            "Return values of the UDF's declared type, or declare the type that is returned."
        ) from error


def _arrow_array(values: list, result_type: pa.DataType, safe: bool) -> pa.Array:
    """PySpark's conversion of a udf's converted results: with the type, or,
    when Arrow finds the values invalid for it, inferred and cast (safely
    under ``spark.sql.execution.pandas.convertToArrowArraySafely``); a value
    of another type altogether is a TypeError."""
    try:
        return pa.array(values, type=result_type)
    except pa.ArrowInvalid:
        return converted(lambda: pa.array(values).cast(result_type, safe=safe), values, result_type, "the results")
    except pa.ArrowTypeError as error:
        raise TypeError(
            f"the function's results ({_python_types(values)}) cannot be converted to {result_type}: {error}. "
            "Return values of the UDF's declared type, or declare the type that is returned."
        ) from error


def _python_types(values: list) -> str:
    names = sorted({type(value).__name__ for value in values if value is not None})
    return f"list of {', '.join(names) or 'None'}"


def scalar_pandas(bundle: UdfBundle, spec: StreamSpec, batches: Iterator[pa.RecordBatch]):
    """The scalar ``pandas_udf``: one call per batch with PySpark's pandas
    columns (session-time timestamps, DataFrames for structs), a Series (or a
    DataFrame for a struct return type) converted back as PySpark does."""
    import pandas as pd
    from pyspark.sql.types import StructField, StructType

    zone = session_time_zone(spec.input_schema, spec.output_schema)
    settings = ConversionSettings.of(spec.input_schema)
    result_schema = StructType([StructField(f"_{i}", call.return_type) for i, call in enumerate(bundle.calls)])
    for batch in batches:
        arguments = _pandas_arguments(batch, zone, settings)
        results = []
        for call in bundle.calls:
            result = call(arguments)
            _check_pandas_result(result, batch.num_rows, isinstance(call.return_type, StructType), pd)
            results.append(result)
        yield conform(_from_pandas(results, result_schema, zone, spec, settings), spec.output_schema)


def _pandas_arguments(batch: pa.RecordBatch, zone: str, settings: ConversionSettings) -> list:
    """A batch's columns as PySpark gives them to a ``pandas_udf``: Series,
    DataFrames for structs, timestamps in the session zone."""
    from pyspark.sql.conversion import ArrowBatchTransformer

    if not batch.num_columns:
        return []
    return ArrowBatchTransformer.to_pandas(
        batch,
        timezone=zone,
        struct_in_pandas="dict",
        prefer_int_ext_dtype=settings.prefer_int_ext_dtype,
        df_for_struct=True,
    )


def scalar_pandas_iter(bundle: UdfBundle, spec: StreamSpec, batches: Iterator[pa.RecordBatch]):
    """The iterator ``pandas_udf``: its function called once for the whole
    stream with an iterator over each batch's arguments (a Series, or a tuple
    of them for several arguments), converted as for the scalar
    ``pandas_udf``. It may take several batches before it yields, and split
    its results as it likes; PySpark's own checks hold it to as many rows in
    all as it took (failing as soon as it returns more), and to taking every
    batch."""
    import pandas as pd
    from pyspark.sql.types import StructField, StructType
    from pyspark.worker import (
        verify_iter_result_row_count,
        verify_iterator_exhausted,
        verify_output_row_limit,
        verify_pandas_result,
        verify_return_type,
    )

    (call,) = bundle.calls  # the worker refuses other bundles for this kind
    zone = session_time_zone(spec.input_schema, spec.output_schema)
    settings = ConversionSettings.of(spec.input_schema)
    result_schema = StructType([StructField("_0", call.return_type)])
    returns = pd.DataFrame if isinstance(call.return_type, StructType) else pd.Series
    rows_taken = 0

    def arguments(batch: pa.RecordBatch):
        nonlocal rows_taken
        columns = _pandas_arguments(batch, zone, settings)
        rows_taken += batch.num_rows
        taken = tuple(columns[i] for i in call.args)
        return taken[0] if len(taken) == 1 else taken

    taken = map(arguments, batches)

    def converted_results():
        for result in verify_return_type(call.function(taken), Iterator[returns]):
            verify_pandas_result(result, call.return_type, assign_cols_by_name=True, truncate_return_schema=True)
            yield _from_pandas([result], result_schema, zone, spec, settings)

    counted = verify_output_row_limit(converted_results(), lambda: rows_taken)
    for batch in verify_iter_result_row_count(counted, lambda: rows_taken):
        yield conform(batch, spec.output_schema)
    verify_iterator_exhausted(taken)


def grouped_agg_pandas(bundle: UdfBundle, spec: StreamSpec, batches: Iterator[pa.RecordBatch]):
    """The grouped-aggregate ``pandas_udf`` (``groupBy(...).agg(f(col))``):
    each batch is one whole group, each UDF is called once on its arguments'
    Series and its one value becomes the group's row, converted as PySpark's
    worker converts it for this eval type."""
    import pandas as pd
    from pyspark.sql.conversion import ArrowBatchTransformer
    from pyspark.sql.types import StructField, StructType

    zone = session_time_zone(spec.input_schema, spec.output_schema)
    settings = ConversionSettings.of(spec.input_schema)
    result_schema = StructType([StructField(f"_{i}", call.return_type) for i, call in enumerate(bundle.calls)])
    for group in batches:
        # PySpark gives this eval type plain Series, structs as dicts (no DataFrames).
        columns = (
            ArrowBatchTransformer.to_pandas(group, timezone=zone, prefer_int_ext_dtype=settings.prefer_int_ext_dtype)
            if group.num_columns
            else []
        )
        values = [pd.Series([call(columns)]) for call in bundle.calls]
        yield conform(_from_pandas(values, result_schema, zone, spec, settings), spec.output_schema)


def _check_pandas_result(result, rows: int, struct_return: bool, pd) -> None:
    expected = "pandas.DataFrame" if struct_return else "pandas.Series"
    if not hasattr(result, "__len__"):
        raise TypeError(f"a pandas UDF must return a {expected}, not {type(result).__name__}")
    if len(result) != rows:
        raise ValueError(
            f"Result vector from pandas_udf was not the required length: expected {rows}, got {len(result)}"
        )
    if struct_return and not isinstance(result, pd.DataFrame):
        raise ValueError(
            "Invalid return type. Please make sure that the UDF returns a pandas.DataFrame "
            "when the specified return type is StructType."
        )


def _from_pandas(results: list, schema, zone: str, spec: StreamSpec, settings: ConversionSettings) -> pa.RecordBatch:
    """PySpark's conversion of returned pandas data to Arrow."""
    from pyspark.sql.conversion import PandasToArrowConversion

    return PandasToArrowConversion.convert(
        results,
        schema,
        timezone=zone,
        safecheck=settings.safecheck,
        arrow_cast=True,
        prefers_large_types=uses_large_types(spec.output_schema),
        assign_cols_by_name=settings.assign_cols_by_name,
        int_to_decimal_coercion_enabled=settings.int_to_decimal_coercion,
    )


def map_pandas(command: SparkCommand, spec: StreamSpec, batches: Iterator[pa.RecordBatch]):
    """``mapInPandas``: each batch as the DataFrame PySpark makes of it, each
    returned DataFrame checked and converted back as PySpark does."""
    import pandas as pd
    from pyspark.sql.conversion import ArrowBatchTransformer
    from pyspark.sql.types import StructField, StructType
    from pyspark.worker import verify_pandas_result

    zone = session_time_zone(spec.input_schema, spec.output_schema)
    settings = ConversionSettings.of(spec.input_schema)
    result_schema = StructType([StructField("_0", command.return_type)])

    def frames():
        for batch in batches:
            yield ArrowBatchTransformer.to_pandas(
                ArrowBatchTransformer.wrap_struct(batch),
                timezone=zone,
                prefer_int_ext_dtype=settings.prefer_int_ext_dtype,
                df_for_struct=True,
            )[0]

    results = returned_iterator(command.func(frames()), "pandas.DataFrame", settings)
    for frame in results:
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(
                f"mapInPandas functions must return an iterator of pandas.DataFrame, not of {type(frame).__name__}"
            )
        verify_pandas_result(frame, command.return_type, assign_cols_by_name=True, truncate_return_schema=True)
        wrapped = _from_pandas([frame], result_schema, zone, spec, settings)
        yield conform(ArrowBatchTransformer.flatten_struct(wrapped), spec.output_schema)


def grouped_map_arrow(command: SparkCommand, spec: StreamSpec, batches: Iterator[pa.RecordBatch]):
    """``applyInArrow`` with a function of a ``pyarrow.Table`` (or of the
    group's key and the table): each batch is one whole group, the returned
    table is checked against the declared schema as PySpark's worker checks
    it, and all of it becomes the group's one result batch."""
    from pyspark.worker import verify_return_type

    def results(function, arguments, settings):
        *key, group = arguments
        return [verify_return_type(function(*key, pa.Table.from_batches([group])), pa.Table)]

    return _grouped_map_arrow(command, spec, batches, results)


def grouped_map_arrow_iter(command: SparkCommand, spec: StreamSpec, batches: Iterator[pa.RecordBatch]):
    """``applyInArrow`` with a function of an iterator of record batches (or
    of the key and one): called once per group with an iterator over that
    group's rows in batches of ``spark.sql.execution.arrow.maxRecordsPerBatch``
    rows, as Spark feeds it; every batch it yields is checked as PySpark does."""
    from pyspark.worker import verify_return_type

    def results(function, arguments, settings):
        *key, group = arguments
        batches = _in_batches(group, settings.max_records_per_batch)
        return list(verify_return_type(function(*key, batches), Iterator[pa.RecordBatch]))

    return _grouped_map_arrow(command, spec, batches, results)


def _grouped_map_arrow(command: SparkCommand, spec: StreamSpec, batches: Iterator[pa.RecordBatch], results):
    """The loop of both ``applyInArrow`` kinds: the key as PySpark passes it
    (a tuple of the first row's ``pyarrow.Scalar``s of the grouping columns),
    to a function of two parameters; ``results(function, arguments,
    settings)`` calls it and returns its tables or batches."""
    from pyspark.sql.conversion import ArrowBatchTransformer
    from pyspark.sql.pandas.types import to_arrow_type

    settings = ConversionSettings.of(spec.input_schema)
    # The schema PySpark's worker holds results to: its timestamps are UTC,
    # relabelled to the declared session zone by conform().
    large = uses_large_types(spec.output_schema)
    declared = pa.schema(list(to_arrow_type(command.return_type, timezone="UTC", prefers_large_types=large)))
    with_key = takes_two_arguments(command.func)
    for group in batches:
        arguments = (_arrow_key(group, spec.group_keys), group) if with_key else (group,)
        checked = [
            ArrowBatchTransformer.enforce_schema(
                result, declared, arrow_cast=False, reorder_by_name=settings.assign_cols_by_name
            )
            for result in results(command.func, arguments, settings)
        ]
        yield conform(_one_batch(checked, declared), spec.output_schema)


def _in_batches(group: pa.RecordBatch, max_rows: int) -> Iterator[pa.RecordBatch]:
    """The group's rows in order, in batches of at most ``max_rows`` rows
    (slices of it, not copies), or whole when ``max_rows`` is zero or less; an
    empty group is its one empty batch."""
    if max_rows <= 0 or group.num_rows <= max_rows:
        return iter([group])
    return (group.slice(start, max_rows) for start in range(0, group.num_rows, max_rows))


def _arrow_key(group: pa.RecordBatch, keys: list[str]) -> tuple:
    """The group's key: the first row's scalars of its key columns; () for an empty group."""
    if not group.num_rows:
        return ()
    return tuple(group.column(name)[0] for name in keys)


def _one_batch(results: list, schema: pa.Schema) -> pa.RecordBatch:
    """Returned tables or batches, already of the declared types (their
    names may differ when columns are matched by position), as one batch.
    A result with neither columns nor rows (``pa.table({})``) is no rows;
    rows without columns cannot be the declared ones, and fail."""
    tables = []
    for result in results:
        if result.num_columns == 0:
            if result.num_rows:
                raise TypeError(
                    f"the function returned {result.num_rows} rows without columns; the schema has {len(schema)}"
                )
            continue
        table = result if isinstance(result, pa.Table) else pa.Table.from_batches([result])
        tables.append(table.rename_columns(schema.names).cast(schema))
    if not tables:
        return empty_batch(schema)
    whole = pa.concat_tables(tables)
    return pa.RecordBatch.from_arrays([column.combine_chunks() for column in whole.columns], schema=schema)


#: The kinds whose conversions differ from :mod:`.kinds`' for a PySpark
#: command; a command of another kind (``mapInArrow``: batches in, batches
#: out) is evaluated by :mod:`.kinds` with its function.
BUNDLE_KINDS = {
    "scalar_row": scalar_row,
    "scalar_pandas": scalar_pandas,
    "scalar_pandas_iter": scalar_pandas_iter,
    "grouped_agg_pandas": grouped_agg_pandas,
}
#: The bundle kinds whose function takes the whole stream: a bundle of one UDF.
SINGLE_UDF_KINDS = frozenset({"scalar_pandas_iter"})
COMMAND_KINDS = {
    "map_pandas": map_pandas,
    "grouped_map_arrow": grouped_map_arrow,
    "grouped_map_arrow_iter": grouped_map_arrow_iter,
}
