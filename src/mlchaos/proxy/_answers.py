"""Responses the HTTP proxy writes itself: injected aborts and its own errors (400, 502, 504).

Both planes also share :func:`reset_transport`, the way a reset fault cuts a connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from http import HTTPStatus

from mlchaos.arms import FAULT_HEADER
from mlchaos.proxy._assign import ARM_LINES

__all__ = ["FAULT_LINE", "bad_request_message", "error_body", "own_response", "reset_transport"]

# The header a proxy adds to an answer one of its faults changed. Proxies pass it on, so the
# client at the edge (traffic, or the edge proxy's log) learns a fault touched the request
# anywhere on its path, as long as the services between pass response headers on.
FAULT_LINE = FAULT_HEADER.encode() + b": 1\r\n"

_LINGER_RST = struct.pack("ii", 1, 0)
_BAD_REQUEST = {
    400: "malformed HTTP request",
    413: "request body too large",
    414: "request URL too long",
    431: "request headers too large",
    503: "too many connections: try again later",
}


def reset_transport(transport: asyncio.Transport) -> None:
    """Close with a TCP RST (SO_LINGER 0) rather than a FIN."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
    transport.abort()


def own_response(
    status: int,
    body: bytes,
    content_type: str,
    *,
    arm: int,
    keep_alive: bool,
    http10: bool,
    head_only: bool,
    fault: bool = False,
) -> bytes:
    """A complete response, framed by its content length, carrying the request's arm (and the
    fault mark, when a fault made it)."""
    connection = FAULT_LINE if fault else b""
    if not keep_alive:
        connection += b"connection: close\r\n"
    elif http10:
        connection += b"connection: keep-alive\r\n"
    head = b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n%s%s\r\n" % (
        status,
        _reason(status),
        _header_value(content_type),
        len(body),
        ARM_LINES[arm],
        connection,
    )
    return head if head_only else head + body


def error_body(message: str) -> bytes:
    """The JSON body of the proxy's own errors: ``{"error": "mlchaos proxy: ..."}``."""
    return json.dumps({"error": f"mlchaos proxy: {message}"}).encode()


def bad_request_message(status: int) -> str:
    return _BAD_REQUEST.get(status, "bad request")


def _header_value(text: str) -> bytes:
    """``text`` as a header value that cannot break the head (no CR/LF, latin-1 only)."""
    return text.replace("\r", " ").replace("\n", " ").encode("latin-1", "replace")


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b"Unknown"
