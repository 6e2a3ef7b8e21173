"""The ``flightpickle`` command.

Today it reports what is installed; payload inspection (``flightpickle
inspect``) arrives with sealed payloads.
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata


def _versions() -> str:
    from flightpickle import _native

    package = metadata.version("flightpickle")
    python = ".".join(map(str, sys.version_info[:3]))
    return (
        f"flightpickle {package} (native core {_native.core_version()}, "
        f"{sys.implementation.name} {python})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="flightpickle",
        description="Pickle Python functions and classes by value, with a Rust core.",
    )
    parser.add_argument("--version", action="store_true", help="print the versions and exit")
    args = parser.parse_args(argv)
    if args.version:
        print(_versions())
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
