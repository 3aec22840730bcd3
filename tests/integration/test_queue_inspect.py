"""``manage.py queue_inspect`` against the private Redis: what operators ask, answered in tables."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from queue_app.queue import Job, create_redis_queue, get_queue_config
from tests.obs_support import base_env, run_manage
from tests.queue_ops import drain_ledger, process_jobs, start_jobs

STREAM = "aragora:queue:debates:stream"


def inspect(*args: str) -> str:
    """Run queue_inspect and return what it printed."""
    out = io.StringIO()
    call_command("queue_inspect", *args, stdout=out)
    return out.getvalue()


def inspect_json(*args: str) -> Any:
    return json.loads(inspect(*args, "--json"))


def enqueue(count: int, *, priority: int = 0, queue: str = "debates") -> list[str]:
    """Enqueue ``count`` jobs on ``queue``; return their ids."""

    async def run() -> list[str]:
        producer = await create_redis_queue(consumer_name="producer", config=get_queue_config())
        try:
            jobs = [
                Job(payload={"n": n}, metadata={"job_type": "debate"}, priority=priority)
                for n in range(count)
            ]
            return [await producer.enqueue(job, queue_name=queue) for job in jobs]
        finally:
            await producer.close()

    return asyncio.run(run())


def test_queue_inspect_groups_of_every_priority_stream(redis_url: str) -> None:
    enqueue(3)
    enqueue(2, priority=5)
    out = inspect("groups", "debates")
    assert "groups (2)" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[4:]}
    assert rows[STREAM][1:3] == ["debate-workers", "0"] and rows[STREAM][-1] == "3"
    assert rows[f"{STREAM}:p5"][-1] == "2"  # lag: entries not yet read by the group


def test_queue_inspect_consumers_and_pending(redis_url: str) -> None:
    ids = enqueue(3)
    started = start_jobs(2)
    consumers = inspect_json("consumers", "debates")["consumers"]
    assert [(row["consumer"], row["pending"]) for row in consumers] == [("test-worker", 2)]
    pending = inspect_json("pending", "debates")
    entries = pending["oldest deliveries"]
    (summary,) = pending["summary"]
    assert summary["stream"] == STREAM and summary["pending"] == 2
    assert summary["consumers"] == {"test-worker": 2}
    assert {summary["oldest"], summary["newest"]} == {row["entry"] for row in entries}
    assert sorted(row["job_id"] for row in entries) == sorted(started)
    assert all(row["deliveries"] == 1 and row["consumer"] == "test-worker" for row in entries)
    assert set(started) < set(ids)
    (first,) = inspect_json("pending", "debates", "--count", "1")["oldest deliveries"]
    assert first["entry"] == summary["oldest"]
    table = inspect("pending", "debates", "--count", "1")
    assert "oldest deliveries (1)" in table and "test-worker=2" in table


def test_queue_inspect_dead_letters_with_their_error(redis_url: str) -> None:
    enqueue(2)
    failed = process_jobs("failed")
    out = inspect("dead", "debates")
    assert "dead letters (2)" in out
    for job_id in failed:
        assert job_id in out
    assert out.count("boom: the agent crashed") == 2
    rows = inspect_json("dead", "debates", "--count", "1")["dead letters"]
    assert len(rows) == 1 and rows[0]["status"] == "failed" and rows[0]["failed_at"] > 0


@pytest.mark.django_db
def test_queue_inspect_job_hash_and_ledger_row(redis_url: str) -> None:
    (job_id,) = enqueue(1)
    answer = inspect_json("job", job_id)
    assert answer["redis"]["status"] == "pending" and answer["redis"]["queue"] == "debates"
    assert answer["redis"]["key"] == f"aragora:queue:job:{job_id}" and answer["ledger"] is None
    process_jobs("completed")
    drain_ledger()
    out = inspect("job", job_id)
    assert "\nredis\n" in out and "\nledger\n" in out
    assert out.count("completed") >= 2  # the hash's status and the ledger row's


def test_queue_inspect_keys_with_type_ttl_and_size(redis_url: str) -> None:
    enqueue(4)
    enqueue(1, priority=-3)
    rows = {row["key"]: row for row in inspect_json("keys", "debates")["keys"]}
    assert rows[STREAM] == {"key": STREAM, "type": "stream", "ttl_ms": -1, "size": 4}
    assert rows[f"{STREAM}:p-3"]["size"] == 1
    assert rows["aragora:queue:debates:idx:pending"]["size"] == 5
    assert rows["aragora:queue:debates:levels"]["type"] == "zset"
    assert "keys (" in inspect("keys")  # the default queue


@pytest.mark.django_db
def test_queue_inspect_unknown_queue_or_job_is_one_line(redis_url: str) -> None:
    with pytest.raises(CommandError, match=r"unknown queue 'nope' \(known: .*debates"):
        inspect("pending", "nope")
    with pytest.raises(CommandError, match="no job 'missing' in Redis"):
        inspect("job", "missing")
    with pytest.raises(CommandError, match="--count must be at least 1"):
        inspect("dead", "debates", "--count", "0")


def run_inspect(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py queue_inspect`` as an operator would."""
    return run_manage(env, "queue_inspect", *args, timeout=60)


def test_queue_inspect_exit_status_from_the_command_line(redis_url: str, tmp_path: Path) -> None:
    env = base_env(redis_url, tmp_path)
    done = run_inspect(env, "groups", "nope")
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1 and "unknown queue 'nope'" in done.stderr
    done = run_inspect({**env, "REDIS_URL": "redis://127.0.0.1:1/0"}, "keys", "debates")
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1
    assert "cannot read Redis" in done.stderr
    done = run_inspect(env, "job", "some-id")  # the database of env was never migrated
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1
    assert "cannot read the job ledger in the database: no such table" in done.stderr
