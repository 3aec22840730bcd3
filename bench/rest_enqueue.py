"""Measure REST enqueues/s: one client, keep-alive, against the site served as `make run` does.

Starts a private redis-server, migrates a throw-away SQLite database, creates a user with a
token, serves the site with `bin/serve` (granian, ASGI) on a free port, then POSTs debate
jobs to /api/queue/jobs/ one after another and reports requests/s and latency percentiles,
then POSTs 1,000 debate jobs per request to /api/queue/jobs/bulk/ and reports jobs/s.

Usage: .venv/bin/python bench/rest_enqueue.py [requests] [bulk requests]   (default 3000 30)
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
from typing import Any

import httpx
import redis
from _redis import private_redis

ROOT = Path(__file__).resolve().parents[1]
WARMUP = 200
#: Jobs per bulk request.
BULK_SIZE = 1000
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


class CpuMeter:
    """CPU seconds used by the served site (granian and its workers) and by Redis.

    On a shared machine the wall-clock rate swings with the other processes; CPU per request is
    the steadier figure, and 1 / (CPU per request) is the rate one idle core would reach.
    """

    def __init__(self, server_pid: int, redis_url: str) -> None:
        self.pid = server_pid
        self.redis = redis.Redis.from_url(redis_url)

    def read(self) -> tuple[float, float]:
        """Return (site CPU seconds, Redis CPU seconds) so far."""
        info = self.redis.info("cpu")
        return _tree_cpu(self.pid), float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _tree_cpu(pid: int) -> float:
    """Return user + system CPU seconds of ``pid`` and its descendants (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    return total


def cpu_note(meter: CpuMeter, before: tuple[float, float], jobs: int) -> str:
    """Return "site x µs + redis y µs CPU per job" since ``before``."""
    site_cpu, redis_cpu = (b - a for a, b in zip(before, meter.read(), strict=True))
    site_us, redis_us = site_cpu / jobs * 1e6, redis_cpu / jobs * 1e6
    return f"CPU per job: site {site_us:,.0f} µs + redis {redis_us:,.0f} µs"


@contextlib.contextmanager
def site(redis_url: str) -> Iterator[tuple[str, str, CpuMeter]]:
    """Yield the URL of ``bin/serve`` serving the site, an API token and its CPU meter."""
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
        yield url, token, CpuMeter(server.pid, redis_url)
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


def _post_all(
    url: str, token: str, path: str, body: Any, requests: int, warmup: int
) -> tuple[list[float], float]:
    """POST ``body`` ``warmup`` then ``requests`` times on one keep-alive connection.

    Return the latencies and the elapsed time of the measured requests; any answer but 201 stops.
    """
    headers = {"Authorization": f"Token {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for _ in range(warmup):
            client.post(path, json=body).raise_for_status()
        latencies = []
        started = time.perf_counter()
        for _ in range(requests):
            sent = time.perf_counter()
            response = client.post(path, json=body)
            latencies.append(time.perf_counter() - sent)
            if response.status_code != 201:
                raise SystemExit(f"{path} failed: {response.status_code} {response.text}")
        return latencies, time.perf_counter() - started


def measure(url: str, token: str, meter: CpuMeter, requests: int) -> None:
    """POST jobs one after another; print the rate, latency percentiles and CPU per job."""
    cpu = meter.read()
    latencies, elapsed = _post_all(url, token, "/api/queue/jobs/", BODY, requests, WARMUP)
    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"{'REST enqueue (POST /api/queue/jobs/), one client':50s} "
        f"{requests / elapsed:10,.0f} /s  ({requests} in {elapsed:.2f} s; "
        f"p50 {cuts[49] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms; "
        f"{cpu_note(meter, cpu, requests)})"
    )


def measure_bulk(url: str, token: str, meter: CpuMeter, requests: int) -> None:
    """POST 1,000 jobs per request one after another; print jobs/s and CPU per job."""
    body = {"jobs": [BODY] * BULK_SIZE}
    cpu = meter.read()
    latencies, elapsed = _post_all(url, token, "/api/queue/jobs/bulk/", body, requests, 3)
    print(
        f"{'REST bulk enqueue (POST jobs/bulk/, 1,000 jobs)':50s} "
        f"{requests * BULK_SIZE / elapsed:10,.0f} jobs/s  ({requests} requests in "
        f"{elapsed:.2f} s; median {statistics.median(latencies) * 1000:.0f} ms per request; "
        f"{cpu_note(meter, cpu, requests * BULK_SIZE)})"
    )


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    bulk_count = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    print(f"load average before: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")
    with private_redis() as redis_url, site(redis_url) as (url, token, meter):
        measure(url, token, meter, count)
        if bulk_count:
            measure_bulk(url, token, meter, bulk_count)
