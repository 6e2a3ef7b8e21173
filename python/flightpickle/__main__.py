"""The ``flightpickle`` command.

    flightpickle --version          what is installed
    flightpickle inspect FILE       what a pickle or sealed payload would import
                                    and call, read without running it (--json;
                                    FILE may be - for stdin)
"""

from __future__ import annotations

import argparse
import json
import os
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


def _inspect(args) -> int:
    from flightpickle import inspection, sealing

    name = "<stdin>" if args.file == "-" else args.file
    try:
        found = inspection.inspect_payload(_read_input(args.file))
    except (OSError, ValueError, sealing.SealedPayloadError) as error:
        print(f"flightpickle inspect: {name}: {error}", file=sys.stderr)
        return 1
    report = json.dumps(found.to_dict(), indent=2) if args.json else inspection.format_table(found, name)
    return _write_output(report)


def _read_input(file: str) -> bytes:
    if file == "-":
        return sys.stdin.buffer.read()
    with open(file, "rb") as f:
        return f.read()


def _write_output(text: str) -> int:
    """Print the report; a reader that stops early (``| head``) is not an error."""
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's own flush at exit
        # does not raise a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="flightpickle",
        description="Pickle Python functions and classes by value, with a Rust core.",
    )
    parser.add_argument("--version", action="store_true", help="print the versions and exit")
    commands = parser.add_subparsers(dest="command")
    inspect = commands.add_parser(
        "inspect",
        help="list what a pickle would import and call, without running it",
        description="Read a pickle or sealed payload without unpickling it, and list the "
        "modules it imports, the globals it names and calls, and what travels by value. "
        "A sealed payload's digest is checked; with FLIGHTPICKLE_KEY set, so is its signature.",
    )
    inspect.add_argument("file", help="a file holding a pickle or a sealed payload, or - for stdin")
    inspect.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if args.version:
        print(_versions())
        return 0
    if args.command == "inspect":
        return _inspect(args)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
