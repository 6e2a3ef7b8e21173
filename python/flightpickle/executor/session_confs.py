"""The Spark session's SQL confs that a stream carries: those PySpark's worker
converts, batches and checks results by. The Spark plugin sends their session
values with each stream, as a JSON object of strings under the input schema's
metadata key ``flightpickle.spark.conf``; a conf not sent (or a stream from
another caller, without the key) has PySpark's own default."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import pyarrow as pa

#: The input schema's metadata key for the session's confs.
CONVERSION_CONFS_KEY = b"flightpickle.spark.conf"
#: Spark's default ``spark.sql.execution.arrow.maxRecordsPerBatch``.
DEFAULT_MAX_RECORDS_PER_BATCH = 10000


@dataclass(frozen=True)
class ConversionSettings:
    """The confs, with PySpark's worker's defaults."""

    safecheck: bool = False
    assign_cols_by_name: bool = True
    binary_as_bytes: bool = True
    int_to_decimal_coercion: bool = False
    prefer_int_ext_dtype: bool = False
    #: Whether ``mapInArrow`` and ``mapInPandas`` functions may return any
    #: iterable rather than an iterator (Spark 4.3's default keeps the
    #: leniency of earlier versions).
    map_accepts_any_iterable: bool = True
    #: Rows in a batch of a group that a grouped iterator function gets;
    #: zero or less for no limit, as in Spark.
    max_records_per_batch: int = DEFAULT_MAX_RECORDS_PER_BATCH

    FLAG_CONFS: ClassVar[dict[str, str]] = {
        "spark.sql.execution.pandas.convertToArrowArraySafely": "safecheck",
        "spark.sql.legacy.execution.pandas.groupedMap.assignColumnsByName": "assign_cols_by_name",
        "spark.sql.execution.pyspark.binaryAsBytes": "binary_as_bytes",
        "spark.sql.execution.pythonUDF.pandas.intToDecimalCoercionEnabled": "int_to_decimal_coercion",
        "spark.sql.execution.pythonUDF.pandas.preferIntExtensionDtype": "prefer_int_ext_dtype",
        "spark.sql.execution.pythonUDF.mapInBatch.legacy.acceptAnyIterable.enabled": "map_accepts_any_iterable",
    }
    INT_CONFS: ClassVar[dict[str, str]] = {
        "spark.sql.execution.arrow.maxRecordsPerBatch": "max_records_per_batch",
    }

    @classmethod
    def of(cls, schema: pa.Schema) -> "ConversionSettings":
        sent = (schema.metadata or {}).get(CONVERSION_CONFS_KEY)
        if sent is None:
            return cls()
        try:
            confs = json.loads(sent)
        except ValueError as error:
            raise ValueError(f"the input schema's {CONVERSION_CONFS_KEY.decode()} is not JSON: {error}") from None
        flags = {field: str(confs[key]).lower() == "true" for key, field in cls.FLAG_CONFS.items() if key in confs}
        numbers = {field: _int_conf(key, confs[key]) for key, field in cls.INT_CONFS.items() if key in confs}
        return cls(**flags, **numbers)


def _int_conf(key: str, value) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError(
            f"the input schema's {CONVERSION_CONFS_KEY.decode()} has {key}={value!r}, not an integer"
        ) from None
