"""The site as `make run` and the image serve it (``bin/serve``): slow clients, body limits.

One server for the module, with short limits so that the tests wait little: headers within 1 s,
bodies within 2 s.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
import pytest
import redis

from tests.obs_support import ROOT, Process, base_env, start_web, wait_ready

if TYPE_CHECKING:
    pass

JOBS = "/api/queue/jobs/"
#: Slow connections of each kind opened at once.
SLOW_CLIENTS = 25


@dataclass
class Site:
    """The served site: its URL, an API token, and the Redis it uses."""

    url: str
    token: str
    redis_url: str
    server: Process

    @property
    def address(self) -> tuple[str, int]:
        """Return the server's host and port."""
        host, port = self.url.removeprefix("http://").split(":")
        return host, int(port)

    def headers(self) -> dict[str, str]:
        """Return the headers of an authenticated JSON request."""
        return {"Authorization": f"Token {self.token}", "Content-Type": "application/json"}


def _token(env: dict[str, str]) -> str:
    code = (
        "from django.contrib.auth.models import User\n"
        "from rest_framework.authtoken.models import Token\n"
        "print(Token.objects.create(user=User.objects.create_user('alice')).key)\n"
    )
    shell = [sys.executable, "manage.py", "shell", "--no-imports", "-c", code]
    done = subprocess.run(shell, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def site(redis_server: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Serve the site with ``bin/serve`` on a free port for the whole module."""
    tmp_path = tmp_path_factory.mktemp("edge")
    redis_url = redis_server.url  # type: ignore[attr-defined]
    env = base_env(
        redis_url,
        tmp_path,
        ARAGORA_HTTP_BODY_TIMEOUT="2",
        GRANIAN_HTTP1_HEADER_READ_TIMEOUT="1000",
    )
    server, url = start_web(env, tmp_path / "web.log")
    try:
        wait_ready(f"{url}/healthz", server)
        yield Site(url, _token(env), redis_url, server)
    finally:
        server.stop()


def _slow(site: Site, head: bytes) -> socket.socket:
    sock = socket.create_connection(site.address, timeout=5)
    sock.sendall(head)
    return sock


def _answer(sock: socket.socket) -> bytes:
    """Return what the server sent before closing the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_web_edge_slow_clients_do_not_stall_the_site(site: Site) -> None:
    with ExitStack() as stack:
        headers = [
            stack.enter_context(_slow(site, b"GET /healthz HTTP/1.1\r\nHost: x\r\n"))
            for _ in range(SLOW_CLIENTS)
        ]
        body_head = f"POST {JOBS} HTTP/1.1\r\nHost: x\r\nAuthorization: Token {site.token}\r\n"
        body_head += "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        bodies = [stack.enter_context(_slow(site, body_head.encode())) for _ in range(SLOW_CLIENTS)]
        for _ in range(5):
            started = time.monotonic()
            response = httpx.get(f"{site.url}/healthz", timeout=5)
            assert response.status_code == 200
            assert time.monotonic() - started < 1.0
        # Headers not complete within 1 s: the connection is closed without an answer.
        assert all(_answer(sock) == b"" for sock in headers)
        # Bodies not complete within 2 s: 408 JSON, connection closed.
        for sock in bodies:
            answer = _answer(sock)
            assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
            assert b'"Request body not received within 2 s."' in answer


def test_web_edge_idle_keep_alive_connections_are_closed(site: Site) -> None:
    with _slow(site, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n") as sock:
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        assert _answer(sock) == b""  # closed by the server, not by our 5 s socket timeout
        assert time.monotonic() - started < 3


def _chunks(body: bytes, size: int = 1000) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_web_edge_chunked_body_is_read(site: Site) -> None:
    body = json.dumps({"job_type": "debate", "payload": {"question": "Chunked?"}}).encode()
    response = httpx.post(f"{site.url}{JOBS}", content=_chunks(body, 7), headers=site.headers())
    assert response.status_code == 201, response.text
    job_id = response.json()["id"]
    with redis.Redis.from_url(site.redis_url) as client:
        stored = client.hget(f"aragora:queue:job:{job_id}", "payload")
    assert stored is not None and json.loads(stored)["question"] == "Chunked?"


@pytest.mark.parametrize("chunked", [True, False])
@pytest.mark.parametrize("size", [300_000, 30_000_000])
def test_web_edge_oversized_body_is_413_json(site: Site, chunked: bool, size: int) -> None:
    body = json.dumps({"job_type": "debate", "payload": {"question": "x" * size}}).encode()
    content = _chunks(body, 65536) if chunked else body
    try:
        response = httpx.post(f"{site.url}{JOBS}", content=content, headers=site.headers())
    except httpx.WriteError:  # refused before the whole body was sent, as it should be
        response = _post_head_only(site, len(body))
    assert response.status_code == 413
    assert response.json() == {"detail": "Request body larger than 262144 bytes."}


def _post_head_only(site: Site, length: int) -> httpx.Response:
    """Send only the request head of a large POST and return the server's answer."""
    head = f"POST {JOBS} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n"
    with _slow(site, head.encode()) as sock:
        raw = _answer(sock)
    status = int(raw.split(b" ", 2)[1])
    return httpx.Response(status, content=raw.split(b"\r\n\r\n", 1)[1])


def test_web_edge_deep_json_is_400(site: Site) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    response = httpx.post(f"{site.url}{JOBS}", content=body, headers=site.headers())
    assert response.status_code == 400
    assert response.json() == {"detail": "JSON nested deeper than 32 levels."}


def test_web_edge_site_pages_answer_through_the_edge(site: Site) -> None:
    assert httpx.get(f"{site.url}/admin/login/").status_code == 200
    response = httpx.post(f"{site.url}/admin/login/", content=b"x" * 3_000_000)
    assert response.status_code == 413
    assert "larger than 2621440 bytes" in response.json()["detail"]
