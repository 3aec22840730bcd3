"""The site's ASGI edge: every request body is read here first, bounded in size and in time.

Django's ASGI handler spools any body to disk without a limit and waits for it without a
deadline, and DRF reads a body without Content-Length (chunked) as empty. So before Django:
- a declared length over the limit gets 413 at once, and so does a body that grows past it;
- a body that is not complete within ``timeout`` seconds gets 408 (slow clients hold nothing);
- a complete body is handed on with its Content-Length, chunked or not, as the first message
  of ``receive``, or as bytes to an app that takes them (``Replay.take_body``).
The limit is ``ARAGORA_API_MAX_BODY_BYTES`` under the API prefix, ``DATA_UPLOAD_MAX_MEMORY_SIZE``
elsewhere. Errors are JSON ``{"detail": ...}`` and close the connection.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

ASGIScope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[ASGIScope, Receive, Send], Awaitable[None]]


class _Refused(Exception):
    """The body cannot be accepted: answer ``status`` with ``detail``."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class _Disconnected(Exception):
    """The client went away while sending its body."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BodyLimits:
    """Size and time limits of request bodies."""

    #: Path prefix of the REST API, and its largest body in bytes.
    api_prefix: str
    api_max_bytes: int
    #: Largest body elsewhere (admin forms), in bytes.
    site_max_bytes: int
    #: Seconds a client has to send its whole body.
    timeout: float


class BodyEdge:
    """ASGI middleware that reads and checks each request body before the app sees it."""

    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: ASGIScope, receive: Receive, send: Send) -> None:
        """Read the body, then call the app with it (and its length), or refuse it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["path"])
        try:
            _check_declared(scope, limit)
            body = await asyncio.wait_for(_read_body(receive, limit), self.limits.timeout)
        except _Refused as refused:
            await _refuse(send, refused.status, refused.detail)
            return
        except TimeoutError:
            detail = f"Request body not received within {self.limits.timeout:g} s."
            await _refuse(send, 408, detail)
            return
        except _Disconnected:
            return
        await self.app(_with_length(scope, len(body)), Replay(body, receive), send)

    def _limit(self, path: str) -> int:
        if path.startswith(self.limits.api_prefix):
            return self.limits.api_max_bytes
        return self.limits.site_max_bytes


def _header(scope: ASGIScope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return bytes(value)
    return None


def _check_declared(scope: ASGIScope, limit: int) -> None:
    declared = _header(scope, b"content-length")
    if declared is None:
        return
    if not declared.strip().isdigit():
        raise _Refused(400, "Content-Length must be a number of bytes.")
    if int(declared) > limit:
        raise _Refused(413, f"Request body larger than {limit} bytes.")


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _Refused(413, f"Request body larger than {limit} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _with_length(scope: ASGIScope, length: int) -> ASGIScope:
    """Return ``scope`` whose headers give the body's length and no transfer coding."""
    headers = [
        (key, value)
        for key, value in scope["headers"]
        if key.lower() not in (b"content-length", b"transfer-encoding")
    ]
    if length or _header(scope, b"content-length") is not None:
        headers.append((b"content-length", str(length).encode()))
    return {**scope, "headers": headers}


class Replay:
    """The ``receive`` the app gets: the body read, then the client's own messages (its
    disconnect). An app that knows it may take the body as bytes instead (``take_body``)."""

    def __init__(self, body: bytes, receive: Receive) -> None:
        self._body: bytes | None = body
        self._receive = receive

    def take_body(self) -> bytes | None:
        """Return the body, which ``receive`` then no longer yields (None once taken)."""
        body, self._body = self._body, None
        return body

    async def __call__(self) -> Message:
        """Yield the body read, then wait for the client's next message."""
        body = self.take_body()
        if body is None:
            return await self._receive()
        return {"type": "http.request", "body": body, "more_body": False}


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
