"""``manage.py queue_worker`` processes: kill -9, takeover, SIGTERM, Redis restart, bad flags."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from queue_app.queue import Job, QueueConfig, create_redis_queue
from tests.process_support import WorkerProcesses as Workers
from tests.process_support import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
STREAM = "aragora:queue:diagnostics:stream"
GROUP = "debate-workers"
CLAIM_IDLE_MS = 10_000
#: Environment of the workers of these tests.
WORKER_ENV = {
    "ARAGORA_QUEUE_CLAIM_IDLE_MS": str(CLAIM_IDLE_MS),
    "ARAGORA_QUEUE_RETRY_BASE_DELAY": "0.1",
}


@pytest.fixture
def workers(redis_url: str, tmp_path: Path) -> Iterator[Workers]:
    started = Workers(redis_url, tmp_path, env=WORKER_ENV)
    yield started
    started.stop_all()


def sync_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True)


async def enqueue_sleepers(url: str, count: int, seconds: float) -> list[str]:
    queue = await create_redis_queue(consumer_name="producer", config=QueueConfig(redis_url=url))
    try:
        jobs = [
            Job(payload={"seconds": seconds, "tag": i}, metadata={"job_type": "sleep"})
            for i in range(count)
        ]
        return await queue.enqueue_many(jobs, queue_name="diagnostics")
    finally:
        await queue.close()


def job_fields(client: redis.Redis, job_id: str) -> dict[str, str]:
    return client.hgetall(f"aragora:queue:job:{job_id}")


def statuses(client: redis.Redis, ids: list[str]) -> list[str]:
    return [job_fields(client, job_id).get("status", "") for job_id in ids]


async def test_killed_worker_loses_no_job(workers: Workers, redis_url: str) -> None:
    ids = await enqueue_sleepers(redis_url, 20, 1.0)
    client = sync_client(redis_url)
    first = workers.start("doomed", "--concurrency", "5")
    wait_for(lambda: statuses(client, ids).count("processing") == 5, 15, "5 jobs in flight")
    in_flight = {i for i, s in zip(ids, statuses(client, ids), strict=True) if s == "processing"}
    first.send_signal(signal.SIGKILL)
    first.wait()
    workers.start("heir", "--concurrency", "5")
    wait_for(lambda: statuses(client, ids).count("completed") == 20, 45, "all jobs completed")

    attempts = {job_id: int(job_fields(client, job_id)["attempts"]) for job_id in ids}
    rerun = {job_id for job_id, n in attempts.items() if n > 1}
    assert rerun == in_flight, "only the jobs in flight at the kill run twice"
    assert all(job_fields(client, j)["worker_id"] == "heir" for j in rerun)
    assert client.xpending(STREAM, GROUP)["pending"] == 0
    assert client.xlen(STREAM) == 0


async def test_slow_job_on_live_worker_is_never_taken_over(
    workers: Workers, redis_url: str
) -> None:
    [job_id] = await enqueue_sleepers(redis_url, 1, CLAIM_IDLE_MS / 1000 + 3)
    client = sync_client(redis_url)
    workers.start("slow", "--concurrency", "1")
    wait_for(lambda: statuses(client, [job_id]) == ["processing"], 15, "job started")
    workers.start("idle", "--concurrency", "1")
    wait_for(lambda: statuses(client, [job_id]) == ["completed"], 30, "job completed")
    fields = job_fields(client, job_id)
    assert (fields["attempts"], fields["worker_id"]) == ("1", "slow")
    assert client.xpending(STREAM, GROUP)["pending"] == 0


async def test_sigterm_finishes_in_flight_jobs_and_exits_zero(
    workers: Workers, redis_url: str
) -> None:
    ids = await enqueue_sleepers(redis_url, 8, 1.5)
    client = sync_client(redis_url)
    process = workers.start("graceful", "--concurrency", "3", "--shutdown-timeout", "20")
    wait_for(lambda: statuses(client, ids).count("processing") == 3, 15, "3 jobs in flight")
    in_flight = [i for i, s in zip(ids, statuses(client, ids), strict=True) if s == "processing"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0
    assert statuses(client, in_flight) == ["completed"] * 3
    rest = [job_id for job_id in ids if job_id not in in_flight]
    assert set(statuses(client, rest)) == {"pending"}
    assert client.xpending(STREAM, GROUP)["pending"] == 0
    assert client.xlen(STREAM) == len(rest)


async def test_second_signal_exits_at_once(workers: Workers, redis_url: str) -> None:
    [job_id] = await enqueue_sleepers(redis_url, 1, 30)
    client = sync_client(redis_url)
    process = workers.start("impatient", "--shutdown-timeout", "60")
    wait_for(lambda: statuses(client, [job_id]) == ["processing"], 15, "job started")
    process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert process.poll() is None, "the first signal waits for the running job"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=5) == 1
    assert statuses(client, [job_id]) == ["processing"]
    assert client.xpending(STREAM, GROUP)["pending"] == 1


async def test_worker_reconnects_after_redis_restart(
    workers: Workers, redis_server_factory: Callable[..., Any]
) -> None:
    server = redis_server_factory(appendonly=True)
    client = sync_client(server.url)
    client.config_set("appendfsync", "always")
    ids = await enqueue_sleepers(server.url, 10, 0.2)
    workers.redis_url = server.url
    workers.start("phoenix", "--concurrency", "2")
    wait_for(lambda: "completed" in statuses(client, ids), 15, "first job completed")
    server.kill()
    time.sleep(1.0)
    server.restart()
    client = sync_client(server.url)
    ids += await enqueue_sleepers(server.url, 5, 0.05)
    wait_for(lambda: statuses(client, ids).count("completed") == len(ids), 45, "backlog done")
    log = (workers.log_dir / "phoenix.log").read_text()
    assert log.count("Redis connection lost") == 1
    assert "Redis connection restored" in log


@pytest.mark.parametrize(
    ("flags", "line"),
    [
        (
            ["--concurrency", "zero"],
            "manage.py queue_worker: error: argument --concurrency: not a number: 'zero'",
        ),
        (
            ["--queues", "nowhere"],
            "CommandError: no worker kind serves queue 'nowhere' "
            "(known: batch_explainability, consensus_healing, debates, diagnostics",
        ),
    ],
)
def test_bad_options_are_one_line_and_exit_code_two(flags: list[str], line: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "queue_worker", *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    [printed] = result.stderr.strip().splitlines()
    assert printed.startswith(line)


def test_worker_started_while_redis_is_down_waits_for_it(
    redis_server_factory: Callable[..., Any], tmp_path: Path
) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    workers = Workers(url, tmp_path, env=WORKER_ENV)
    try:
        process = workers.start("patient", "--burst")
        log = tmp_path / "patient.log"
        wait_for(lambda: "Redis unreachable at start" in log.read_text(), 60, "the first try")
        time.sleep(1)  # it keeps retrying instead of exiting
        assert process.poll() is None
        server = redis_server_factory(port=port)
        assert server.url == url
        [job_id] = asyncio.run(enqueue_sleepers(url, 1, 0.01))
        assert process.wait(timeout=30) == 0
        assert sync_client(url).hget(f"aragora:queue:job:{job_id}", "status") == "completed"
        assert log.read_text().count("Redis unreachable at start") == 1
    finally:
        workers.stop_all()


def start_errors(redis_url: str, *flags: str) -> list[str]:
    """Start ``queue_worker`` on ``redis_url``; expect exit 1; return its CommandError lines."""
    result = subprocess.run(
        [sys.executable, "manage.py", "queue_worker", "--queues", "diagnostics", *flags],
        cwd=ROOT,
        env={**os.environ, "REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    return [line for line in result.stderr.splitlines() if "CommandError" in line]


def test_worker_exits_one_line_when_redis_is_down_and_told_not_to_wait(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    errors = start_errors(url, "--exit-if-unreachable", "--no-ledger")
    assert len(errors) == 1 and "cannot start worker: Redis unreachable" in errors[0]


def test_worker_exits_one_line_on_a_redis_without_functions(
    redis_server_factory: Callable[..., Any],
) -> None:
    server = redis_server_factory(extra=["--rename-command", "FUNCTION", ""])  # as Redis 6.2
    errors = start_errors(server.url, "--no-ledger")
    assert len(errors) == 1 and "cannot start worker: Redis 7.0 or newer is needed" in errors[0]
