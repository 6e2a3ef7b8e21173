"""Reading a query's physical plan and running it under a session conf, for the SQL
extension's tests (local and remote transports alike)."""

from __future__ import annotations


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
    """`run()` with the session's `key` set to `value`, then unset (back to the application's)."""
    spark.conf.set(key, value)
    try:
        return run()
    finally:
        spark.conf.unset(key)
