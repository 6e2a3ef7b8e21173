"""A worker's watch on its caller: when the caller of a stream hangs up (a
Spark task killed or cancelled, a client gone) while the stream's function
is still running, the function gets ``cancel_grace`` seconds to return, and
then the worker process exits so that its supervisor starts a fresh one.

Without it, a function that computes for a long time, or never returns,
would keep its worker busy for nobody, and the service would serve one
stream fewer for as long. Python cannot stop a function in the middle of C
code, so the worker ends the way Spark ends its own Python worker after
``spark.python.task.killTimeout``. A function that returns within the grace
sees its next send or receive fail and the worker goes on as usual.

The watch runs in one thread per worker, asleep in ``poll`` on the stream's
socket (for a hang-up only: input does not wake it) and on a pipe that the
worker's main thread writes to when a stream begins or ends.
"""

from __future__ import annotations

import os
import select
import sys
import threading
from contextlib import contextmanager

#: The worker's exit status when its caller hung up and the function ran on.
EXIT_STATUS = 3


class HangUpWatch:
    """Watches the stream being served; see the module's docstring."""

    def __init__(self, grace: float):
        self.grace = grace
        self._lock = threading.Lock()
        #: The connection being served (held, so that its descriptor stays
        #: this socket's while polled), that descriptor, and the event set
        #: when its stream ends.
        self._current: tuple[object, int, threading.Event] | None = None
        self._wake_read, self._wake_write = os.pipe()
        threading.Thread(target=self._watch, name="flightpickle-hang-up-watch", daemon=True).start()

    @contextmanager
    def watching(self, conn):
        """Watches ``conn`` while the block serves its stream."""
        over = threading.Event()
        # Asked here: the connection's methods may wait for one another.
        fd = conn.fileno()
        with self._lock:
            self._current = (conn, fd, over)
        os.write(self._wake_write, b"s")
        try:
            yield
        finally:
            over.set()
            with self._lock:
                self._current = None
            os.write(self._wake_write, b"e")

    def _watch(self) -> None:
        poller = select.poll()
        poller.register(self._wake_read, select.POLLIN)
        watched_fd = None
        while True:
            with self._lock:
                current = self._current
            if current is not None and current[2].is_set():
                current = None  # its stream is over; the wake-up that says so is on its way
            fd = None if current is None else current[1]
            if fd != watched_fd:
                if watched_fd is not None:
                    poller.unregister(watched_fd)
                if fd is not None:
                    # No events asked for: poll reports a hang-up regardless.
                    poller.register(fd, 0)
                watched_fd = fd
            for ready_fd, events in poller.poll():
                if ready_fd == self._wake_read:
                    os.read(self._wake_read, 4096)
                elif current is not None and events & (select.POLLHUP | select.POLLERR):
                    # Returns only once the stream is over, which the next
                    # round sees; its socket stops being polled then.
                    self._caller_left(current[2])

    def _caller_left(self, over: threading.Event) -> None:
        if over.wait(self.grace):
            return
        print(
            f"executor: worker {os.getpid()}: the caller of a stream hung up and its function "
            f"ran on for {self.grace:g} s more; exiting so that a fresh worker takes its place",
            file=sys.stderr,
            flush=True,
        )
        os._exit(EXIT_STATUS)
