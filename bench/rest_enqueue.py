"""Measure REST enqueues/s: one client, keep-alive, against the site served as `make run` does.

Starts a private redis-server, migrates a throw-away SQLite database, creates a user with a
token, serves the site with `bin/serve` (granian, ASGI) on a free port, then POSTs debate
jobs to /api/queue/jobs/ one after another and reports requests/s and latency percentiles.

Usage: .venv/bin/python bench/rest_enqueue.py [requests]   (default 3000)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from _redis import private_redis

ROOT = Path(__file__).resolve().parents[1]
WARMUP = 200
BODY = {
    "job_type": "debate",
    "payload": {"question": "Is Redis a database?", "agents": ["anthropic-api"], "rounds": 3},
}
CREATE_TOKEN = """
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
user = User.objects.create_user("bench")
print(Token.objects.create(user=user).key)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@contextlib.contextmanager
def site(redis_url: str) -> Iterator[tuple[str, str]]:
    """Yield the URL of ``bin/serve`` serving the site, and an API token."""
    workdir = tempfile.mkdtemp(prefix="bench-site-")
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "ARAGORA_RUN_DIR": workdir,
        "DATABASE_URL": f"sqlite:///{workdir}/db.sqlite3",
        "ARAGORA_LOG_LEVEL": "WARNING",
        "ARAGORA_SECRET_KEY": "bench-only-key-of-a-throw-away-site-0123456789abcdefghijklmnop",
        "ARAGORA_API_ENQUEUE_RATE": "off",
    }
    _manage(env, "migrate", "--noinput")
    token = _manage(env, "shell", "--no-imports", "-c", CREATE_TOKEN).splitlines()[-1]
    port = _free_port()
    env["PORT"] = str(port)
    env["GRANIAN_LOG_ACCESS_ENABLED"] = "false"
    server = subprocess.Popen([ROOT / "bin" / "serve"], cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, server)
        yield url, token
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_until_up(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("bin/serve exited before answering")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise SystemExit("bin/serve did not answer /healthz within 30 s")


def measure(url: str, token: str, requests: int) -> None:
    """POST jobs one after another on one keep-alive connection; print the rate."""
    headers = {"Authorization": f"Token {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        for _ in range(WARMUP):
            client.post("/api/queue/jobs/", json=BODY).raise_for_status()
        latencies = []
        started = time.perf_counter()
        for _ in range(requests):
            sent = time.perf_counter()
            response = client.post("/api/queue/jobs/", json=BODY)
            latencies.append(time.perf_counter() - sent)
            if response.status_code != 201:
                raise SystemExit(f"enqueue failed: {response.status_code} {response.text}")
        elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"{'REST enqueue (POST /api/queue/jobs/), one client':50s} "
        f"{requests / elapsed:10,.0f} /s  ({requests} in {elapsed:.2f} s; "
        f"p50 {cuts[49] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms)"
    )


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    with private_redis() as redis_url, site(redis_url) as (url, token):
        measure(url, token, count)
