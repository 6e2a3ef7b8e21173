"""Evaluation kinds: how a function is applied to input batches, and how its
results are converted to, and checked against, the declared output types the
way Spark does for the same kind of UDF.

Each kind is a function ``(func, stream) -> iterator of output batches`` where
``stream`` says what the caller declared (``StreamSpec``) and holds the input
batches; the iterator yields batches already of the output schema.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa

from .numpy_series import series_of
from .session_confs import ConversionSettings

ERROR_COLUMN = "error"
#: The kinds whose function may take each group's key, read from the input
#: columns the stream's group keys name.
KEYED_KINDS = frozenset({"grouped_map_pandas", "grouped_map_arrow", "grouped_map_arrow_iter"})
#: numpy dtype kinds pyarrow converts from a pandas Series by its numpy values:
#: signed and unsigned integers, floats, booleans.
NUMPY_NATIVE_KINDS = "iufb"


@dataclass
class StreamSpec:
    kind: str
    input_schema: pa.Schema
    output_schema: pa.Schema
    row_errors: bool
    group_keys: list[str]

    def check(self) -> None:
        """Refuses declarations no evaluation could satisfy (a protocol error);
        the output columns are checked against the function (``check_outputs``)."""
        if self.row_errors and self.kind != "scalar_row":
            raise ValueError(f"row errors are only reported for scalar_row, not {self.kind}")
        missing = [k for k in self.group_keys if k not in self.input_schema.names]
        if missing:
            raise ValueError(f"group keys {missing} are not input columns {self.input_schema.names}")
        ambiguous = [k for k in self.group_keys if self.input_schema.names.count(k) > 1]
        if ambiguous:
            raise ValueError(f"group keys {ambiguous} name more than one input column")
        if self.group_keys and self.kind not in KEYED_KINDS:
            raise ValueError(f"group keys are only for {', '.join(sorted(KEYED_KINDS))}, not {self.kind}")


    def check_outputs(self, functions: int) -> None:
        """Refuses a scalar output schema that is not one column per function
        (one, or a bundle's UDFs), then the row error column if asked for."""
        if self.kind not in ("scalar_row", "scalar_pandas", "scalar_pandas_iter", "grouped_agg_pandas"):
            return
        want = functions + 1 if self.row_errors else functions
        if len(self.output_schema) != want:
            raise ValueError(f"{self.kind} needs an output schema of {want} column(s), got {self.output_schema}")
        if self.row_errors:
            error = self.output_schema.field(functions)
            if error.name != ERROR_COLUMN or error.type != pa.string() or not error.nullable:
                raise ValueError(f"the row error column must be a nullable string named {ERROR_COLUMN!r}")


#: What converting a function's results can raise when they do not fit the
#: declared type: every pyarrow error (invalid values, unsupported or
#: mismatched types, a cast pyarrow lacks, ...) and Python's own.
CONVERSION_ERRORS = (pa.ArrowException, TypeError, ValueError, OverflowError)


def to_arrow(values, data_type: pa.DataType, what: str) -> pa.Array:
    """Converts a function's results to ``data_type``, as Spark's Arrow path does."""
    if hasattr(values, "dtype") or hasattr(values, "__array__"):
        return converted(lambda: pa.Array.from_pandas(_numpy_values(values), type=data_type), values, data_type, what)
    return converted(lambda: pa.array(values, type=data_type), values, data_type, what)


def converted(convert: Callable[[], pa.Array], values, data_type: pa.DataType, what: str) -> pa.Array:
    """``convert()``, any failure of it a TypeError that says what was
    returned, what was declared and what to do; running out of memory stays
    itself, being no fault of the results."""
    try:
        return convert()
    except MemoryError:
        raise
    except CONVERSION_ERRORS as error:
        raise TypeError(
            f"{what} ({returned_type(values)}) cannot be converted to {data_type}: {error}. "
            f"Return values of {data_type}, or declare the type that is returned."
        ) from error


def returned_type(values) -> str:
    """The type of a function's results, in words: an Arrow array's type, a
    Series's or array's dtype, or the Python types in a list."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return f"Arrow {values.type}"
    dtype = getattr(values, "dtype", None)
    if dtype is not None:
        return f"{type(values).__name__} of {dtype}"
    if not isinstance(values, (list, tuple)):
        return type(values).__name__  # iterating it might consume or fail
    names = sorted({type(value).__name__ for value in values if value is not None})
    return f"{type(values).__name__} of {', '.join(names) or 'None'}"


def _numpy_values(values):
    """A Series of numbers or booleans as its own numpy array, which pyarrow
    converts exactly as it converts the Series (it takes the Series's
    values), without the tens of microseconds it spends recognising a pandas
    object; anything else as it is."""
    dtype = getattr(values, "dtype", None)
    if isinstance(dtype, np.dtype) and dtype.kind in NUMPY_NATIVE_KINDS and not isinstance(values, np.ndarray):
        to_numpy = getattr(values, "to_numpy", None)
        if to_numpy is not None:
            return to_numpy()
    return values


def column_to_pandas(column: pa.Array):
    """``column.to_pandas()``. Numbers and booleans take a shorter road to the
    same Series (numpy array, dtype, nulls as NaN or None, zero-copy and
    read-only when pyarrow's would be), about half the cost for small batches."""
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_boolean(column.type):
        return series_of(column.to_numpy(zero_copy_only=False))
    return column.to_pandas()


def scalar_row(func: Callable, spec: StreamSpec, batches: Iterator[pa.RecordBatch]):
    result_type = spec.output_schema.field(0).type
    for batch in batches:
        columns = [column.to_pylist() for column in batch.columns]
        rows = zip(*columns) if columns else ([()] * batch.num_rows)
        if spec.row_errors:
            values, errors = _rows_with_errors(func, rows)
            arrays = [to_arrow(values, result_type, "the function's results"), pa.array(errors, pa.string())]
        else:
            arrays = [to_arrow([func(*row) for row in rows], result_type, "the function's results")]
        yield pa.RecordBatch.from_arrays(arrays, schema=spec.output_schema)


def _rows_with_errors(func, rows):
    values, errors = [], []
    for row in rows:
        try:
            values.append(func(*row))
            errors.append(None)
        except Exception as error:  # noqa: BLE001 - reported per row, by request
            values.append(None)
            errors.append(f"{type(error).__name__}: {error}")
    return values, errors


def scalar_pandas(func: Callable, spec: StreamSpec, batches: Iterator[pa.RecordBatch]):
    result_type = spec.output_schema.field(0).type
    for batch in batches:
        result = func(*(column_to_pandas(column) for column in batch.columns))
        if not hasattr(result, "__len__"):
            raise TypeError(f"a pandas UDF must return a Series or an array, not {type(result).__name__}")
        if len(result) != batch.num_rows:
            raise ValueError(
                f"Result vector from pandas_udf was not the required length: expected {batch.num_rows}, got {len(result)}"
            )
        yield pa.RecordBatch.from_arrays([to_arrow(result, result_type, "the returned Series")], schema=spec.output_schema)


def returned_iterator(results, element: str, settings: ConversionSettings) -> Iterator:
    """What a ``mapInArrow`` or ``mapInPandas`` function returned, as PySpark
    4.3 takes it: an iterator, or, while the session keeps the leniency of
    earlier versions (Spark's default), anything ``iter()`` accepts. Else the
    stream fails with PySpark's error (``UDF_RETURN_TYPE``)."""
    if isinstance(results, Iterator):
        return results
    if settings.map_accepts_any_iterable:
        try:
            return iter(results)
        except TypeError:
            pass
        hint = "return (or yield from) an iterable"
    else:
        hint = (
            "yield the results or return iter(...) of them: the session sets "
            "spark.sql.execution.pythonUDF.mapInBatch.legacy.acceptAnyIterable.enabled=false"
        )
    raise TypeError(
        f"[UDF_RETURN_TYPE] Return type of the user-defined function should be iterator of {element}, "
        f"but is {type(results).__name__}; {hint}."
    )


def map_arrow(func: Callable, spec: StreamSpec, batches: Iterator[pa.RecordBatch]):
    settings = ConversionSettings.of(spec.input_schema)
    for result in returned_iterator(func(batches), "pyarrow.RecordBatch", settings):
        if not isinstance(result, pa.RecordBatch):
            raise TypeError(f"mapInArrow functions must yield pyarrow.RecordBatch, not {type(result).__name__}")
        if result.schema.equals(spec.output_schema):  # the usual case, and nothing to convert
            yield result
            continue
        yield conform_columns(
            {name: result.column(i) for i, name in enumerate(result.schema.names)},
            list(result.columns),
            spec.output_schema,
            "the returned RecordBatch",
        )


def map_pandas(func: Callable, spec: StreamSpec, batches: Iterator[pa.RecordBatch]):
    settings = ConversionSettings.of(spec.input_schema)
    for frame in returned_iterator(func(batch.to_pandas() for batch in batches), "pandas.DataFrame", settings):
        yield conform_frame(frame, spec.output_schema)


def grouped_map_pandas(func: Callable, spec: StreamSpec, batches: Iterator[pa.RecordBatch]):
    with_key = takes_two_arguments(func)
    for group in batches:
        frame = group.to_pandas()
        if with_key:
            result = func(_group_key(group, frame, spec.group_keys), frame)
        else:
            result = func(frame)
        if _wholly_empty(result):  # no rows and no columns: Spark takes it as no rows
            yield empty_batch(spec.output_schema)
            continue
        yield conform_frame(result, spec.output_schema)


def _group_key(group: pa.RecordBatch, frame, keys: list[str]) -> tuple:
    """The group's key as Spark passes it: the first row's key values as
    pandas gives them (numpy scalars for numbers); () for an empty group."""
    if not group.num_rows:
        return ()
    return tuple(frame.iloc[0, group.schema.get_field_index(name)] for name in keys)


def _wholly_empty(result) -> bool:
    import pandas as pd

    return isinstance(result, pd.DataFrame) and result.empty and len(result.columns) == 0


def empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array([], type=field.type) for field in schema], schema=schema)


def takes_two_arguments(func) -> bool:
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) == 2


def conform_frame(frame, schema: pa.Schema) -> pa.RecordBatch:
    """A returned DataFrame as a batch of ``schema``: columns by name when the
    labels are strings, else by position, as Spark assigns them."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"the function must return a pandas.DataFrame, not {type(frame).__name__}")
    by_name = {label: frame[label] for label in frame.columns} if all(isinstance(c, str) for c in frame.columns) else None
    by_position = [frame.iloc[:, i] for i in range(frame.shape[1])]
    return conform_columns(by_name, by_position, schema, "the returned pandas.DataFrame")


def conform_columns(by_name: dict | None, by_position: list, schema: pa.Schema, what: str) -> pa.RecordBatch:
    if by_name is not None:
        missing = [name for name in schema.names if name not in by_name]
        if missing:
            raise KeyError(
                f"Column names of {what} do not match the specified schema. Missing: {', '.join(missing)}. "
                f"Found: {', '.join(map(str, by_name))}"
            )
        columns = [by_name[name] for name in schema.names]
    elif len(by_position) == len(schema):
        columns = by_position
    else:
        raise ValueError(f"{what} has {len(by_position)} columns, the schema {len(schema)}")
    arrays = [_convert_column(column, field, what) for column, field in zip(columns, schema)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _convert_column(column, field: pa.Field, what: str) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if isinstance(column, pa.Array):
        if column.type == field.type:
            return column
        return converted(lambda: column.cast(field.type, safe=True), column, field.type, f"column {field.name!r} of {what}")
    return to_arrow(column, field.type, f"column {field.name!r} of {what}")


#: Kinds that call the function once per input batch and yield its one result
#: before taking the next batch.
ONE_RESULT_PER_BATCH = frozenset(
    {"scalar_row", "scalar_pandas", "grouped_map_pandas", "grouped_agg_pandas", "grouped_map_arrow", "grouped_map_arrow_iter"}
)

KINDS = {
    "scalar_row": scalar_row,
    "scalar_pandas": scalar_pandas,
    "map_arrow": map_arrow,
    "map_pandas": map_pandas,
    "grouped_map_pandas": grouped_map_pandas,
}
