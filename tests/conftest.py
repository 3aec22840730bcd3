"""Shared fixtures: private redis-server processes, so no test ever reaches 127.0.0.1:6379."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import redis
from django.core.cache import cache
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.process_support import RedisServer, free_port

if TYPE_CHECKING:
    from pytest_django.fixtures import SettingsWrapper

#: Imported from here by many tests (the classes live in tests/process_support.py).
__all__ = ["RedisServer", "free_port"]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """Start one private redis-server for the whole run (no persistence)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_server_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., RedisServer]]:
    """Start extra private servers for fault tests; each is killed when the test ends."""
    servers: list[RedisServer] = []

    def start(*, directory: Path | None = None, **options: Any) -> RedisServer:
        directory = directory or tmp_path_factory.mktemp("redis")
        server = RedisServer(directory, **options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.process.poll() is None:
            server.kill()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """Return the URL of the session server, emptied (FLUSHALL) for this test."""
    if redis_server.process.poll() is not None:  # a fault test left it down
        redis_server.restart()
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url


@pytest.fixture(autouse=True)
def _private_redis(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch, settings: SettingsWrapper
) -> None:
    """Point REDIS_URL, in the environment and in Django settings, at the private server."""
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    settings.REDIS_URL = redis_server.url


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    """Start each test with an empty Django cache: no enqueue-rate history from earlier tests.

    The database rolls back between tests, so the next test's user often gets the same id and
    would inherit the last test's throttle history (a fast API reaches 100 requests a second).
    """
    cache.clear()


_SPAN_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Return the in-memory exporter of finished spans, emptied for this test.

    The first use installs an SDK tracer provider (or joins one already installed): from then
    on the library takes its traced paths (PRODUCER spans at enqueue) for the rest of the run.
    """
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    if not getattr(provider, "_test_exporter_attached", False):
        provider.add_span_processor(SimpleSpanProcessor(_SPAN_EXPORTER))
        provider._test_exporter_attached = True  # type: ignore[attr-defined]
    _SPAN_EXPORTER.clear()
    yield _SPAN_EXPORTER
    _SPAN_EXPORTER.clear()
