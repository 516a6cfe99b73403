"""Accepting a proxy's client connections: every waiting one, each time the listener is ready.

uvloop's own server accepts one connection per turn of its loop (``strace``: one ``accept4``
per ``epoll_pwait``). A busy proxy turns its loop a few hundred times a second, so when 1000
clients connected at once, hundreds of them waited in the kernel's accept queue for over a
second: wrk saw a p99 of ~1 s and requests time out at 2 s, while no request inside the proxy
took more than ~100 ms (its own records). An :class:`Acceptor` takes every waiting connection
(up to a batch) each time the listening socket is ready, and hands each to the loop as an
accepted socket, as asyncio's own selector loop does.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import sys
from collections.abc import Callable

__all__ = ["Acceptor"]

_BATCH = 1024  # connections taken at most per wake-up (the listen backlog)
_PAUSE = 0.5  # seconds without accepting after an error (out of file descriptors, say)


class Acceptor:
    """Serves one listening socket (bound and listening already) with ``factory``'s protocols.

    It owns the socket from the start: :meth:`close` stops accepting and closes it, and so does
    a failure to start serving it. Connections already made are the caller's to cut.
    """

    def __init__(self, sock: socket.socket, factory: Callable[[], asyncio.Protocol]) -> None:
        self._loop = asyncio.get_running_loop()
        self._sock = sock
        self._fd = sock.fileno()
        self._factory = factory
        self._handing: set[asyncio.Task[object]] = set()  # accepted, not yet connected
        self._pause: asyncio.TimerHandle | None = None
        self._closed = False
        try:
            sock.setblocking(False)
            self._loop.add_reader(self._fd, self._accept)
        except BaseException:
            sock.close()
            raise

    def is_serving(self) -> bool:
        return not self._closed

    def _accept(self) -> None:
        for _ in range(_BATCH):
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the client left before it was taken
            except OSError as exc:
                # Out of descriptors or memory (or another error): the kernel's queue keeps the
                # clients while the connections being served finish and free some.
                reason = exc.strerror or str(exc)
                sys.stderr.write(f"mlchaos proxy: cannot accept ({reason}); retrying\n")
                self._loop.remove_reader(self._fd)
                self._pause = self._loop.call_later(_PAUSE, self._resume)
                return
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = self._loop.create_task(self._loop.connect_accepted_socket(self._factory, conn))
            self._handing.add(task)
            task.add_done_callback(functools.partial(self._handed, conn))

    def _handed(self, conn: socket.socket, task: asyncio.Task[object]) -> None:
        self._handing.discard(task)
        if task.cancelled() or task.exception() is not None:
            conn.close()  # never became a connection (the proxy stopped, or the loop refused)

    def _resume(self) -> None:
        self._pause = None
        if not self._closed:
            self._loop.add_reader(self._fd, self._accept)

    def close(self) -> None:
        """Stop accepting and close the listening socket."""
        if self._closed:
            return
        self._closed = True
        if self._pause is not None:
            self._pause.cancel()
            self._pause = None
        else:
            self._loop.remove_reader(self._fd)
        self._sock.close()
        for task in list(self._handing):
            task.cancel()
