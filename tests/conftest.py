"""Shared fixtures: private redis-server processes, so no test ever reaches 127.0.0.1:6379."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

if TYPE_CHECKING:
    from pytest_django.fixtures import SettingsWrapper

#: How long a starting redis-server may take to answer PING.
START_TIMEOUT_SECONDS = 10.0


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A private ``redis-server`` subprocess on a loopback port, with its own data directory."""

    def __init__(
        self, directory: Path, *, appendonly: bool = False, port: int | None = None
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run `make setup`")
        #: TCP port on 127.0.0.1; kept across restart().
        self.port = port or free_port()
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        self._args += ["--appendonly", "yes" if appendonly else "no", "--dir", str(directory)]
        self.process: subprocess.Popen[bytes]
        self._start()

    def _start(self) -> None:
        with (self.directory / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(self._args, stdout=log, stderr=subprocess.STDOUT)
        self._wait_for_ping()

    def _wait_for_ping(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        with redis.Redis(port=self.port, socket_timeout=1) as client:
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    client.ping()
                except redis.ConnectionError:
                    time.sleep(0.05)
                else:
                    return
        self.stop()
        log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"redis-server on port {self.port} did not answer PING:\n{log}")

    def kill(self) -> None:
        """Kill the server with SIGKILL, as a crash would, and reap it."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def restart(self) -> None:
        """Start the server again on the same port with the same arguments."""
        if self.process.poll() is None:
            self.kill()
        self._start()

    def stop(self) -> None:
        """Stop the server with SIGTERM (SIGKILL after 5 s) and reap it."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()


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

    def start(
        *, appendonly: bool = False, directory: Path | None = None, port: int | None = None
    ) -> RedisServer:
        directory = directory or tmp_path_factory.mktemp("redis")
        server = RedisServer(directory, appendonly=appendonly, port=port)
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
