"""The site's ASGI handler (``aragora_site.handler``): one thread per request, reused, DB closed.

The handler is called in process, as the server calls it, with views of a test URLconf that
note the thread they run on and whether the database connection of that thread is open.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.core import signals
from django.db import connections
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import URLPattern, path
from django.utils import translation
from django.views.decorators.csrf import csrf_exempt

from aragora_site.edge import BodyEdge, BodyLimits
from aragora_site.handler import RequestThreads, SyncStackASGIHandler

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class Notes:
    """Threads seen during requests, in order."""

    started: list[int] = field(default_factory=list)
    views: list[int] = field(default_factory=list)
    chunks: list[int] = field(default_factory=list)
    #: Per finished request: its thread, and whether its DB connection was still open.
    finished: list[tuple[int, bool]] = field(default_factory=list)
    #: Released by a test to let the waiting views answer.
    release: threading.Event = field(default_factory=threading.Event)
    both_in: threading.Barrier = field(default_factory=lambda: threading.Barrier(2, timeout=10))


NOTES = Notes()


def _query(request: HttpRequest) -> HttpResponse:
    NOTES.views.append(threading.get_ident())
    return HttpResponse(str(User.objects.count()))


def _together(request: HttpRequest) -> HttpResponse:
    NOTES.views.append(threading.get_ident())
    NOTES.both_in.wait()  # both requests in their views at once: two threads
    return HttpResponse("ok")


def _waits(request: HttpRequest) -> HttpResponse:
    NOTES.views.append(threading.get_ident())
    NOTES.release.wait(10)
    return HttpResponse("late")


def _chunks() -> Iterator[bytes]:
    for part in (b"a", b"b", b"c"):
        NOTES.chunks.append(threading.get_ident())
        yield part


def _stream(request: HttpRequest) -> StreamingHttpResponse:
    NOTES.views.append(threading.get_ident())
    User.objects.count()
    return StreamingHttpResponse(_chunks())


async def _endless() -> AsyncIterator[bytes]:
    while True:
        yield b"x"
        await asyncio.sleep(0.01)


def _endless_stream(request: HttpRequest) -> StreamingHttpResponse:
    NOTES.views.append(threading.get_ident())
    return StreamingHttpResponse(_endless())


def _language_chunks() -> Iterator[bytes]:
    for _ in range(2):
        yield f"{translation.get_language()};".encode()


def _french_stream(request: HttpRequest) -> StreamingHttpResponse:
    translation.activate("fr")  # an asgiref Local, as the locale middleware sets it
    return StreamingHttpResponse(_language_chunks())


@csrf_exempt
def _echo(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"{request.headers['Content-Length']}:".encode() + request.body)


def _backend(request: HttpRequest) -> HttpResponse:
    connection = connections["default"]
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            return HttpResponse(str(id(connection.connection)))
        cursor.execute("SELECT pg_backend_pid()")
        return HttpResponse(str(cursor.fetchone()[0]))


class URLs:
    """The test URLconf."""

    urlpatterns: ClassVar[list[URLPattern]] = [
        path("query", _query),
        path("together", _together),
        path("waits", _waits),
        path("stream", _stream),
        path("endless", _endless_stream),
        path("backend", _backend),
        path("french", _french_stream),
        path("echo", _echo),
    ]


def _note_started(**kwargs: Any) -> None:
    NOTES.started.append(threading.get_ident())


def _note_finished(**kwargs: Any) -> None:
    # Connected after Django's close_old_connections, so it sees the connection after it.
    NOTES.finished.append((threading.get_ident(), connections["default"].connection is not None))


@pytest.fixture
def handler(settings: Any) -> Iterator[SyncStackASGIHandler]:
    """Return the handler serving the test URLconf, with the signals noted."""
    global NOTES
    NOTES = Notes()
    settings.ROOT_URLCONF = URLs
    signals.request_started.connect(_note_started)
    signals.request_finished.connect(_note_finished)
    served = SyncStackASGIHandler(idle_threads=2)
    yield served
    signals.request_started.disconnect(_note_started)
    signals.request_finished.disconnect(_note_finished)
    for executor in served.threads.idle:
        executor.submit(_close_connection).result()
        executor.shutdown()


def _close_connection() -> None:
    # Django never closes an in-memory SQLite database (closing would drop it), so close it here.
    if connections["default"].connection is not None:
        connections["default"].connection.close()


@dataclass
class Exchange:
    """One request: what the client sends after its body, and what the handler sent."""

    disconnect: asyncio.Event = field(default_factory=asyncio.Event)
    sent: list[dict[str, Any]] = field(default_factory=list)

    async def receive(self) -> dict[str, Any]:
        if not hasattr(self, "_body_sent"):
            self._body_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])


async def _get(
    handler: SyncStackASGIHandler, route: str, exchange: Exchange | None = None
) -> Exchange:
    exchange = exchange or Exchange()
    scope = {
        "type": "http",
        "method": "GET",
        "path": f"/{route}",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1")],
        "server": ("127.0.0.1", 8000),
    }
    await asyncio.wait_for(handler(scope, exchange.receive, exchange.send), 10)
    return exchange


async def _get_streamed(handler: SyncStackASGIHandler, route: str) -> Exchange:
    """GET a view streaming a sync iterator (which Django's ASGI handler warns about)."""
    with pytest.warns(Warning, match="StreamingHttpResponse must consume synchronous iterators"):
        return await _get(handler, route)


def _connection_closed_at_finish() -> bool:
    """Say whether Django closes a connection at request_finished (not an in-memory SQLite)."""
    connection = connections["default"]
    return not (connection.vendor == "sqlite" and connection.is_in_memory_db())


async def test_asgi_handler_serves_each_request_on_one_reused_thread(
    handler: SyncStackASGIHandler,
) -> None:
    for _ in range(3):
        exchange = await _get(handler, "query")
        assert (exchange.status, exchange.body) == (200, b"0")
    threads = {*NOTES.started, *NOTES.views, *(thread for thread, _ in NOTES.finished)}
    assert len(NOTES.finished) == 3
    assert len(threads) == 1
    assert threads != {threading.get_ident()}
    if _connection_closed_at_finish():
        assert [open_ for _, open_ in NOTES.finished] == [False] * 3


async def test_asgi_handler_serves_concurrent_requests_on_their_own_threads(
    handler: SyncStackASGIHandler,
) -> None:
    first, second = await asyncio.gather(_get(handler, "together"), _get(handler, "together"))
    assert (first.status, second.status) == (200, 200)
    assert len(set(NOTES.views)) == 2
    assert {thread for thread, _ in NOTES.finished} == set(NOTES.views)


async def test_asgi_handler_streams_and_closes_on_the_request_thread(
    handler: SyncStackASGIHandler,
) -> None:
    exchange = await _get_streamed(handler, "stream")
    assert (exchange.status, exchange.body) == (200, b"abc")
    assert {*NOTES.views, *NOTES.chunks, *(thread for thread, _ in NOTES.finished)} == {
        NOTES.views[0]
    }
    if _connection_closed_at_finish():
        assert NOTES.finished == [(NOTES.views[0], False)]


async def test_asgi_handler_stops_streaming_when_the_client_leaves(
    handler: SyncStackASGIHandler,
) -> None:
    exchange = Exchange()
    asyncio.get_running_loop().call_later(0.1, exchange.disconnect.set)
    await _get(handler, "endless", exchange)
    assert exchange.status == 200
    assert exchange.body.startswith(b"x")
    assert NOTES.finished == [(NOTES.views[0], False)] or not _connection_closed_at_finish()


async def test_asgi_handler_finishes_a_request_whose_client_left(
    handler: SyncStackASGIHandler,
) -> None:
    exchange = Exchange()
    exchange.disconnect.set()
    asyncio.get_running_loop().call_later(0.1, NOTES.release.set)
    await _get(handler, "waits", exchange)
    assert [thread for thread, _ in NOTES.finished] == NOTES.views
    assert (await _get(handler, "query")).status == 200


async def test_asgi_handler_refuses_other_connections_as_django_does(
    handler: SyncStackASGIHandler,
) -> None:
    with pytest.raises(ValueError, match="only handle ASGI/HTTP connections"):
        await handler({"type": "websocket"}, Exchange().receive, Exchange().send)


async def test_asgi_handler_keeps_a_healthy_connection_and_replaces_a_broken_one(
    handler: SyncStackASGIHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 60)
    monkeypatch.setitem(connections.settings["default"], "CONN_HEALTH_CHECKS", True)
    first, second = (await _get(handler, "backend")).body, (await _get(handler, "backend")).body
    assert first == second
    if connections["default"].vendor != "postgresql":
        return  # a SQLite connection cannot be broken from outside
    await sync_to_async(_terminate)(int(first))
    third = await _get(handler, "backend")
    assert third.status == 200
    assert third.body != first
    assert (await _get(handler, "backend")).body == third.body


async def test_asgi_handler_streams_in_the_context_the_view_left(
    handler: SyncStackASGIHandler,
) -> None:
    exchange = await _get_streamed(handler, "french")
    assert (exchange.status, exchange.body) == (200, b"fr;fr;")


async def test_asgi_handler_takes_the_body_the_edge_read(handler: SyncStackASGIHandler) -> None:
    body = bytes(range(256)) * 64
    edge = BodyEdge(
        handler, BodyLimits(api_prefix="/api/", api_max_bytes=1, site_max_bytes=1 << 20, timeout=5)
    )
    exchange = Exchange()
    chunks = [body[:1000], body[1000:]]

    async def receive() -> dict[str, Any]:
        if chunks:
            return {"type": "http.request", "body": chunks.pop(0), "more_body": bool(chunks)}
        return await exchange.receive()

    exchange._body_sent = True
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/echo",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1"), (b"transfer-encoding", b"chunked")],
        "server": ("127.0.0.1", 8000),
    }
    await asyncio.wait_for(edge(scope, receive, exchange.send), 10)
    assert (exchange.status, exchange.body) == (200, f"{len(body)}:".encode() + body)


def _terminate(backend: int) -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [backend])
    connections["default"].close()


def test_request_threads_keep_only_the_idle_number() -> None:
    threads = RequestThreads(idle=1)
    first, second = threads.take(), threads.take()
    threads.give_back(first)
    threads.give_back(second)
    assert threads.take() is first
    with pytest.raises(RuntimeError, match="shutdown"):
        second.submit(int)
