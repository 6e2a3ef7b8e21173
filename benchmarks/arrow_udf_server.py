"""arrow-udf's Flight server with ``x + 1`` over int64, for ``benchmarks.executor --arrow-udf``.

Runs as a script under the rival's own venv (arrow-udf with pyarrow 25), so it
imports nothing of this project. Listens on 127.0.0.1 at a port the system
picks and prints that port on its first line, then serves until SIGTERM.
"""

import sys

from arrow_udf import UdfServer, udf


@udf(input_types=["BIGINT"], result_type="BIGINT")
def plus_one(x):
    return x + 1


def main() -> None:
    server = UdfServer(location="127.0.0.1:0")
    server.add_function(plus_one)
    # add_function prints a line of its own; the caller looks for this one.
    print(f"port {server.port}", flush=True)
    server.serve()


if __name__ == "__main__":
    sys.exit(main())
