"""Signed commands from Spark Connect clients.

A Connect server started with ``spark.flightpickle.requireSigned=true`` and a
``spark.flightpickle.signing.secret`` takes only UDF commands signed with the
key derived from that secret. A flightpickle client given the same secret in
``FLIGHTPICKLE_SIGNING_SECRET`` signs its commands with that key; a client
without it, with another secret, or with PySpark's own pickling is refused at
analysis on the server.
"""

from __future__ import annotations

import math

import pytest

import flightpickle.spark
from connect_server import connect_session
from flightpickle.spark import _signing

pytestmark = pytest.mark.spark

SECRET = "connect signing test secret"
SERVER_CONF = {
    "spark.python.daemon.module": "flightpickle.spark.daemon",
    "spark.flightpickle.requireSigned": "true",
    "spark.flightpickle.signing.secret": SECRET,
    "spark.task.maxFailures": "1",
}
NOT_SIGNED = "is not a sealed, signed flightpickle payload"


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    with connect_session(tmp_path_factory.mktemp("connect-signing") / "server.log", SERVER_CONF) as session:
        try:
            yield session
        finally:
            flightpickle.spark.disable()


@pytest.fixture
def client_secret(monkeypatch, spark):
    """Enables flightpickle on the client with the given secret (None: no secret)."""

    def enable(secret: str | None) -> None:
        if secret is None:
            monkeypatch.delenv(_signing.SECRET_ENV, raising=False)
        else:
            monkeypatch.setenv(_signing.SECRET_ENV, secret)
        flightpickle.spark.enable(spark)

    return enable


def floor_query(spark):
    from pyspark.sql import functions as F

    return spark.range(0, 12, numPartitions=3).select(F.udf(lambda n: math.floor(n / 2), "long")("id"))


def test_a_client_with_the_servers_secret_runs_its_udfs(spark, client_secret):
    client_secret(SECRET)
    rows = floor_query(spark).collect()
    assert sorted(r[0] for r in rows) == sorted(n // 2 for n in range(12))

    def evens(batches):
        for batch in batches:
            yield batch.filter(batch.column("id").to_numpy() % 2 == 0)

    assert sorted(r.id for r in spark.range(8).mapInArrow(evens, "id long").collect()) == [0, 2, 4, 6]


@pytest.mark.parametrize("secret", [None, "not the server's secret"], ids=["no secret", "wrong secret"])
def test_a_client_without_the_servers_secret_is_refused(spark, client_secret, secret):
    client_secret(secret)
    with pytest.raises(Exception) as refused:
        floor_query(spark).collect()
    message = str(refused.value)
    assert "flightpickle refused the Python UDF '<lambda>'" in message, message
    expected = "sealed payload is not signed" if secret is None else "signature does not match"
    assert expected in message, message


def test_pysparks_own_pickling_is_refused(spark, client_secret):
    client_secret(SECRET)
    flightpickle.spark.disable()
    with pytest.raises(Exception, match=NOT_SIGNED):
        floor_query(spark).collect()
