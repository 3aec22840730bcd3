"""Start a private redis-server on a free loopback port for a benchmark run."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import redis


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_ping(port: int, seconds: float) -> None:
    """Wait up to ``seconds`` for the redis-server on ``port`` to answer PING."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.ConnectionError):
            redis.Redis(port=port).ping()
            return
        time.sleep(0.02)


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    """Yield the URL of a throw-away redis-server, stopped afterwards."""
    port, workdir = _free_port(), tempfile.mkdtemp(prefix="bench-redis-")
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    process = subprocess.Popen([*args, "--dir", workdir], stdout=subprocess.DEVNULL)
    try:
        wait_for_ping(port, seconds=4.0)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait()
        shutil.rmtree(workdir, ignore_errors=True)
