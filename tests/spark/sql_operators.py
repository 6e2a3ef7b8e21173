"""What the SQL extension's Spark tests share (local and remote transports alike):
the executed plan and its nodes, a query run under a session conf (Spark's own
operators in the same session, say), and the fallback log."""

from __future__ import annotations

import contextlib

import flightpickle
import flightpickle.spark

TRANSPORT = "spark.flightpickle.transport"
RULE_LOGGER = "io.flightpickle.spark.sql.PythonOperatorRule"


def physical_plan(frame) -> str:
    return frame._jdf.queryExecution().executedPlan().toString()


def find_node(plan, name: str):
    """The first node of a physical plan (a py4j object) with this node name, depth first."""
    if plan.nodeName() == name:
        return plan
    children = plan.children()
    for index in range(children.size()):
        found = find_node(children.apply(index), name)
        if found is not None:
            return found
    return None


def with_conf(spark, key: str, value: str, run):
    """``run()`` with the session's ``key`` set to ``value``, then unset (back to the application's)."""
    spark.conf.set(key, value)
    try:
        return run()
    finally:
        spark.conf.unset(key)


@contextlib.contextmanager
def shipped_by_value(spark, module):
    """flightpickle enabled for ``spark``, with ``module`` pickled by value for the block:
    the executors, or a remote pool, cannot import a test module."""
    flightpickle.spark.enable(spark)
    flightpickle.register_pickle_by_value(module)
    try:
        yield
    finally:
        flightpickle.unregister_pickle_by_value(module)


def with_transport(spark, transport, run):
    """``run()`` with ``spark.flightpickle.transport`` set to ``transport`` for the session."""
    return with_conf(spark, TRANSPORT, transport, run)


class FallbackLog:
    """The driver's log lines of the SQL extension's rule (why an operator stays Spark's),
    caught by an appender added to its logger through py4j for as long as this is open."""

    def __init__(self, spark):
        jvm = spark.sparkContext._jvm
        core = jvm.org.apache.logging.log4j.core
        self._writer = jvm.java.io.StringWriter()
        self._appender = core.appender.WriterAppender.createAppender(
            core.layout.PatternLayout.createDefaultLayout(), None, self._writer, "flightpickle-tests", False, True
        )
        self._appender.start()
        self._logger = jvm.org.apache.logging.log4j.LogManager.getLogger(RULE_LOGGER)
        self._logger.addAppender(self._appender)

    def text(self) -> str:
        return self._writer.toString()

    def close(self) -> None:
        self._logger.removeAppender(self._appender)
        self._appender.stop()
