"""Helpers of the observability tests: worker and web subprocesses, scrapes, polling."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from queue_app.queue import Job, QueueConfig, create_redis_queue

ROOT = Path(__file__).resolve().parents[1]
#: Samples by name and sorted label pairs: ``{("name", (("queue", "q"),)): value}``.
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for[T](check: Callable[[], T], what: str, seconds: float = 15.0) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            value = check()
        except (httpx.TransportError, OSError):
            value = None  # type: ignore[assignment]
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def scrape(url: str) -> Samples:
    """Fetch a Prometheus text exposition and return its samples."""
    response = httpx.get(url, timeout=5)
    response.raise_for_status()
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """Return the sample ``name{labels}``, or None when absent."""
    return samples.get((name, tuple(sorted(labels.items()))))


class Process:
    """A subprocess of this checkout with its output in a file; stopped with SIGTERM."""

    def __init__(self, args: Sequence[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.popen = subprocess.Popen(
                list(args), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        """Return everything the process wrote so far."""
        return self.log.read_text(errors="replace")

    def json_lines(self) -> list[dict[str, Any]]:
        """Return the output lines that are JSON objects (log records)."""
        found = []
        for line in self.output().splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except ValueError:
                    continue
        return found

    def stop(self) -> int:
        """SIGTERM, wait (SIGKILL after 10 s); return the exit status."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode


def base_env(redis_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """Return the environment of a site or worker process on ``redis_url``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OTEL_", "ARAGORA_", "PYTEST_", "DJANGO_"))
    }
    env.update(
        REDIS_URL=redis_url,
        DJANGO_SETTINGS_MODULE="aragora_site.settings",
        ARAGORA_RUN_DIR=str(tmp_path / "run"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        ARAGORA_QUEUE_RETRY_BASE_DELAY="0.1",
        ARAGORA_SECRET_KEY="test-only-key-of-a-site-or-worker-subprocess-0123456789abcdef",
    )
    env.update(extra)
    return env


def run_manage(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py <args>`` in a subprocess with ``env``, as an operator would."""
    command = [sys.executable, "manage.py", *args]
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def start_worker(
    env: dict[str, str], log: Path, *, queues: str = "diagnostics", concurrency: int = 5
) -> tuple[Process, int]:
    """Start ``manage.py queue_worker`` with a metrics port; return it and the port."""
    port = free_port()
    args = [sys.executable, "manage.py", "queue_worker", "--queues", queues, "--no-ledger"]
    args += ["--metrics-port", str(port), "--concurrency", str(concurrency)]
    args += ["--worker-id", f"obs-{port}", "--shutdown-timeout", "5"]
    return Process(args, env, log), port


def start_web(env: dict[str, str], log: Path, *, migrate: bool = True) -> tuple[Process, str]:
    """Serve the site as `make run` does (``bin/serve``) on a free loopback port (after
    ``migrate`` unless told not to); return the server process and its URL."""
    if migrate:
        done = run_manage(env, "migrate", "--noinput", "-v0")
        assert done.returncode == 0, done.stderr
    port = free_port()
    server = Process([str(ROOT / "bin" / "serve")], {**env, "PORT": str(port)}, log)
    return server, f"http://127.0.0.1:{port}"


def wait_ready(url: str, process: Process, seconds: float = 20.0) -> None:
    """Wait until ``url`` answers 200, failing early (with its output) if the process died."""

    def ready() -> bool:
        assert process.popen.poll() is None, f"process exited:\n{process.output()}"
        return httpx.get(url, timeout=2).status_code == 200

    wait_for(ready, f"{url} to answer 200", seconds)


def enqueue(redis_url: str, jobs: list[tuple[str, dict[str, Any]]], **options: Any) -> list[str]:
    """Enqueue ``(job_type, payload)`` jobs on the diagnostics queue; return their ids."""

    async def run() -> list[str]:
        config = QueueConfig(redis_url=redis_url)
        queue = await create_redis_queue(consumer_name="obs-producer", config=config)
        try:
            ids = []
            for job_type, payload in jobs:
                job = Job(payload=payload, metadata={"job_type": job_type}, **options)
                ids.append(await queue.enqueue(job, queue_name="diagnostics"))
            return ids
        finally:
            await queue.close()

    return asyncio.run(run())


def metric_lines(text: str, prefix: str = "aragora_queue_") -> Iterator[str]:
    """Yield the sample lines of an exposition that start with ``prefix``."""
    return (line for line in text.splitlines() if line.startswith(prefix))
