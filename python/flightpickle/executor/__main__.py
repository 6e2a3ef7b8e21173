"""``python -m flightpickle.executor serve --listen unix:///path | grpc://host:port --workers N``."""

from __future__ import annotations

import argparse
import os
import sys

from .settings import DEFAULT_BODY_LIMIT, Settings

#: Where the Flight service's bearer token may come from instead of --token-file.
TOKEN_VARIABLE = "FLIGHTPICKLE_EXECUTOR_TOKEN"


def seconds_or_zero(text: str) -> float:
    value = float(text)
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected 0 or more seconds, got {text}")
    return value


def parse(argv):
    parser = argparse.ArgumentParser(prog="python -m flightpickle.executor")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve sealed functions over Arrow batches")
    serve.add_argument("--listen", required=True, help="unix:///path/to/socket, grpc://HOST:PORT or grpc+tls://HOST:PORT")
    serve.add_argument("--workers", type=int, default=1, help="Python worker processes (default 1)")
    serve.add_argument("--max-message-bytes", type=int, default=DEFAULT_BODY_LIMIT)
    serve.add_argument("--idle-timeout", type=float, default=60.0, help="seconds a stream may wait for a message")
    serve.add_argument("--total-timeout", type=float, default=0.0, help="seconds a stream may last (0: no limit)")
    serve.add_argument(
        "--exit-with-parent", action="store_true", help="also stop when the process that started the service exits"
    )
    serve.add_argument("--shutdown-grace", type=float, default=30.0, help="seconds to finish streams on shutdown")
    serve.add_argument(
        "--cancel-grace",
        type=seconds_or_zero,
        default=2.0,
        help="seconds a function may run on after its caller hung up; then its worker is replaced",
    )
    serve.add_argument("--token-file", help=f"grpc: a file holding the bearer token callers must present (or ${TOKEN_VARIABLE})")
    serve.add_argument("--tls-cert", help="grpc+tls: PEM certificate chain file")
    serve.add_argument("--tls-key", help="grpc+tls: PEM private key file")
    worker = commands.add_parser("worker", help=argparse.SUPPRESS)
    worker.add_argument("--fd", type=int, required=True)
    worker.add_argument("--settings", required=True)
    worker.add_argument("--ready-fd", type=int)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.command == "worker":
        from . import worker

        worker.run(args.fd, Settings.from_json(args.settings), args.ready_fd)
        return 0
    from .. import _native
    from . import supervisor

    try:
        flight = flight_options(args)
    except (OSError, ValueError) as error:
        print(f"executor: {error}", file=sys.stderr)
        return 2

    settings = Settings(
        body_limit=args.max_message_bytes,
        idle_timeout=args.idle_timeout,
        total_timeout=args.total_timeout,
        shutdown_grace=args.shutdown_grace,
        cancel_grace=args.cancel_grace,
    )
    try:
        supervisor.serve(args.listen, args.workers, settings, flight, exit_with_parent=args.exit_with_parent)
    except (ValueError, FileExistsError, OSError, RuntimeError, _native.TransportError) as error:
        print(f"executor: {error}", file=sys.stderr)
        return 2
    return 0


def flight_options(args):
    from .supervisor import FlightOptions

    token = os.environ.get(TOKEN_VARIABLE)
    if args.token_file is not None:
        with open(args.token_file, encoding="utf-8") as file:
            token = file.read().strip()
    if token is not None and not token:
        raise ValueError("the bearer token is empty")
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ValueError("--tls-cert and --tls-key go together")
    read = lambda path: None if path is None else open(path, "rb").read()  # noqa: E731
    return FlightOptions(token=token, tls_cert=read(args.tls_cert), tls_key=read(args.tls_key))


if __name__ == "__main__":
    sys.exit(main())
