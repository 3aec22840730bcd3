"""The HTTP endpoint of a worker: ``/metrics`` for Prometheus, ``/healthz`` and ``/readyz``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from queue_app.queue import QueueConnectionError

if TYPE_CHECKING:
    from .runtime import WorkerGroup

logger = logging.getLogger(__name__)

#: Seconds a probe client may take to send its request, and a readiness ping to answer.
READ_TIMEOUT = 2.0
MAX_HEADERS = 100


class MetricsServer:
    """A tiny HTTP/1.1 server (one request per connection) for Prometheus and probes."""

    #: Servers started in this process: the loop only keeps weak references to tasks.
    running: ClassVar[set[MetricsServer]] = set()

    def __init__(self, workers: WorkerGroup, registry: CollectorRegistry) -> None:
        self.workers = workers
        self.registry = registry
        self.port = 0
        self._task: asyncio.Task[None] | None = None

    def start(self, host: str, port: int) -> None:
        """Bind ``host:port`` now and serve from the running loop until ``close()``."""
        loop = asyncio.get_running_loop()
        sock = socket.create_server((host, port), reuse_port=False)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self._task = loop.create_task(self._serve(sock), name=f"metrics-{self.port}")
        MetricsServer.running.add(self)
        logger.info("worker metrics on http://%s:%d/metrics", host, self.port)

    async def close(self) -> None:
        """Stop serving."""
        MetricsServer.running.discard(self)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _serve(self, sock: socket.socket) -> None:
        server = await asyncio.start_server(self._handle, sock=sock)
        async with server:
            await server.serve_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, path, headers = await asyncio.wait_for(_read_request(reader), READ_TIMEOUT)
            status, content_type, body = await self.respond(method, path, headers)
            head = (
                f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (TimeoutError, ValueError, ConnectionError):
            pass  # a broken or slow client: just close
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def respond(
        self, method: str, path: str, headers: dict[str, str]
    ) -> tuple[int, str, bytes]:
        """Return status, content type and body for one request."""
        if method not in ("GET", "HEAD"):
            return 405, "text/plain; charset=utf-8", b"method not allowed\n"
        route = path.split("?", 1)[0]
        if route == "/metrics":
            encoder, content_type = choose_encoder(headers.get("accept", ""))
            # On the loop thread: job statistics are updated there, so a scrape sees them whole.
            body = encoder(self.registry)
            return 200, content_type, body
        if route == "/healthz":
            return _json(200, {"status": "ok"})
        if route == "/readyz":
            checks = {"redis": await self._redis_check(), "worker": self._worker_check()}
            ready = all(value == "ok" for value in checks.values())
            return _json(
                200 if ready else 503,
                {"status": "ok" if ready else "unavailable", "checks": checks},
            )
        return 404, "text/plain; charset=utf-8", b"not found\n"

    async def _redis_check(self) -> str:
        try:
            await asyncio.wait_for(self.workers.ping(), READ_TIMEOUT)
        except (TimeoutError, QueueConnectionError) as error:
            return f"unreachable ({type(error).__name__})"
        return "ok"

    def _worker_check(self) -> str:
        problems = self.workers.problems
        return "; ".join(problems) if problems else "ok"


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str]]:
    """Read the request line and headers; the body (none for GET) is ignored."""
    method, path, _ = (await reader.readline()).decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while len(headers) < MAX_HEADERS:
        line = (await reader.readline()).decode("latin-1").strip()
        if not line:
            break
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return method, path, headers


def _json(status: int, document: dict[str, Any]) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(document).encode() + b"\n"
