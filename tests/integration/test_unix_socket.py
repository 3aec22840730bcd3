"""``REDIS_URL=unix://...``: the library, a sync client and ``queue_worker`` on a Unix socket."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from queue_app.queue import Job, JobStatus, QueueConfig, create_redis_queue
from queue_app.queue.redis.connect import sync_client_from_url
from tests.obs_support import base_env, run_manage
from tests.process_support import RedisServer


def socket_url(make_server: Callable[..., RedisServer], directory: Path) -> str:
    """Start a private redis-server that also listens on a Unix socket; return its URL."""
    path = directory / "redis.sock"
    make_server(directory=directory, extra=("--unixsocket", str(path), "--unixsocketperm", "700"))
    return f"unix://{path}?db=0"


async def enqueue_noops(url: str, count: int) -> tuple[list[str], QueueConfig]:
    config = QueueConfig(redis_url=url)
    queue = await create_redis_queue(consumer_name="producer", config=config)
    try:
        jobs = [Job(payload={}, metadata={"job_type": "noop"}) for _ in range(count)]
        return [await queue.enqueue(job, queue_name="diagnostics") for job in jobs], config
    finally:
        await queue.close()


async def statuses(config: QueueConfig, job_ids: list[str]) -> list[JobStatus | None]:
    queue = await create_redis_queue(consumer_name="reader", config=config)
    try:
        jobs = [await queue.get_status(job_id) for job_id in job_ids]
        return [job.status if job else None for job in jobs]
    finally:
        await queue.close()


def test_queue_worker_runs_jobs_over_a_unix_socket(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path
) -> None:
    url = socket_url(redis_server_factory, tmp_path)
    job_ids, config = asyncio.run(enqueue_noops(url, 3))
    with sync_client_from_url(url, decode_responses=True, socket_keepalive=True) as client:
        assert client.ping() is True
    env = {**base_env(url, tmp_path), "REDIS_URL": url}
    done = run_manage(env, "queue_worker", "--queues", "diagnostics", "--burst", "--no-ledger")
    assert done.returncode == 0, done.stderr
    assert asyncio.run(statuses(config, job_ids)) == [JobStatus.COMPLETED] * 3
