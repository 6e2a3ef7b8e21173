"""``python -m flightpickle.executor serve --listen unix:///path --workers N``."""

from __future__ import annotations

import argparse
import sys

from .settings import DEFAULT_BODY_LIMIT, Settings


def parse(argv):
    parser = argparse.ArgumentParser(prog="python -m flightpickle.executor")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve sealed functions over Arrow batches")
    serve.add_argument("--listen", required=True, help="unix:///path/to/socket")
    serve.add_argument("--workers", type=int, default=1, help="Python worker processes (default 1)")
    serve.add_argument("--max-message-bytes", type=int, default=DEFAULT_BODY_LIMIT)
    serve.add_argument("--idle-timeout", type=float, default=60.0, help="seconds a stream may wait for a message")
    serve.add_argument("--total-timeout", type=float, default=0.0, help="seconds a stream may last (0: no limit)")
    serve.add_argument(
        "--exit-with-parent", action="store_true", help="also stop when the process that started the service exits"
    )
    serve.add_argument("--shutdown-grace", type=float, default=30.0, help="seconds to finish streams on shutdown")
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

    settings = Settings(
        body_limit=args.max_message_bytes,
        idle_timeout=args.idle_timeout,
        total_timeout=args.total_timeout,
        shutdown_grace=args.shutdown_grace,
    )
    try:
        supervisor.serve(args.listen, args.workers, settings, exit_with_parent=args.exit_with_parent)
    except (ValueError, FileExistsError, OSError, RuntimeError, _native.TransportError) as error:
        print(f"executor: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
