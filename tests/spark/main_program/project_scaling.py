"""A project file next to the driver program: the driver imports it, executors cannot."""

STEP = 3


def scale(n):
    return n * STEP
