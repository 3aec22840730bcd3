"""``@task`` calls enqueued here run in a real ``manage.py queue_worker --queues tasks`` process."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import redis
from django.tasks import TaskResultStatus
from django.utils import timezone

from queue_app.tasks.examples import add, describe_attempt, divide, greet, require_positive

ROOT = Path(__file__).resolve().parents[2]


def run_burst_worker(redis_url: str, log: Path) -> int:
    """Run ``queue_worker --queues tasks --burst`` until the queue is empty; return its status."""
    env = {**os.environ, "REDIS_URL": redis_url, "ARAGORA_QUEUE_RETRY_BASE_DELAY": "0.1"}
    args = ["--queues", "tasks", "--burst", "--no-ledger", "--worker-id", "w-accept"]
    with log.open("wb") as out:
        process = subprocess.run(
            [sys.executable, "manage.py", "queue_worker", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=45,
            check=False,
        )
    return process.returncode


def test_worker_process_runs_tasks_and_results_come_back(redis_url: str, tmp_path: Path) -> None:
    summed, greeted = add.enqueue(2, 3), greet.enqueue("Ada")
    described = describe_attempt.enqueue(note="from the acceptance test")
    run_after = timezone.now() + timedelta(seconds=1)
    deferred = add.using(run_after=run_after).enqueue(10, 20)
    refused, retried = require_positive.enqueue(-1), divide.enqueue(1, 0)

    log = tmp_path / "worker.log"
    assert run_burst_worker(redis_url, log) == 0, log.read_text()

    assert add.get_result(summed.id).return_value == 5
    assert greet.get_result(greeted.id).return_value == "Hello, Ada!"
    context = describe_attempt.get_result(described.id)
    assert context.return_value == {
        "id": described.id,
        "attempt": 1,
        "note": "from the acceptance test",
    }
    assert context.worker_ids == ["w-accept"]
    late = add.get_result(deferred.id)
    assert late.return_value == 30 and late.started_at is not None
    assert late.started_at >= run_after - timedelta(seconds=0.1)

    failed = require_positive.get_result(refused.id)
    assert failed.status is TaskResultStatus.FAILED and failed.attempts == 1
    assert failed.errors[0].exception_class is ValueError
    assert "ValueError: -1 is not positive" in failed.errors[0].traceback
    exhausted = divide.get_result(retried.id)
    assert exhausted.status is TaskResultStatus.FAILED
    assert exhausted.worker_ids == ["", "", "w-accept"]
    assert exhausted.errors[0].exception_class is ZeroDivisionError

    with redis.Redis.from_url(redis_url) as client:
        assert client.xlen("aragora:queue:tasks:stream") == 0
        assert client.xpending("aragora:queue:tasks:stream", "debate-workers")["pending"] == 0
