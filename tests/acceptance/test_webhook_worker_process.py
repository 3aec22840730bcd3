"""`manage.py queue_worker --queues webhook_delivery`: a worker process delivers a signed event."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import redis
from pytest_httpserver import HTTPServer
from standardwebhooks import Webhook

from queue_app.queue import QueueConfig, create_redis_queue
from tests.obs_support import ROOT, base_env
from workers.webhooks import WEBHOOKS_QUEUE, create_webhook_job, generate_secret

SECRET = generate_secret()
CREATE_ENDPOINT = (
    "import os; from queue_app.models import WebhookEndpoint; "
    "print(WebhookEndpoint.objects.create(url=os.environ['HOOK_URL'], "
    "secret=os.environ['HOOK_SECRET'], event_types=['job.completed']).pk)"
)


def manage(
    env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


async def enqueue(redis_url: str, endpoint_id: str) -> str:
    queue = await create_redis_queue(
        consumer_name="producer", config=QueueConfig(redis_url=redis_url)
    )
    try:
        job = create_webhook_job(endpoint_id, "job.completed", {"job_id": "j-9"})
        return await queue.enqueue(job, queue_name=WEBHOOKS_QUEUE)
    finally:
        await queue.close()


def test_queue_worker_delivers_a_webhook_and_records_it(redis_url: str, tmp_path: Path) -> None:
    receiver = HTTPServer(host="127.0.0.1")
    receiver.expect_request("/hook", method="POST").respond_with_data("ok")
    receiver.start()
    try:
        env = base_env(redis_url, tmp_path, ARAGORA_WEBHOOK_ALLOW_PRIVATE="true")
        env.update(
            ARAGORA_LOG_LEVEL="DEBUG", HOOK_URL=receiver.url_for("/hook"), HOOK_SECRET=SECRET
        )
        assert manage(env, "migrate", "--noinput", "-v0").returncode == 0
        created = manage(env, "shell", "-c", CREATE_ENDPOINT)
        assert created.returncode == 0, created.stderr
        endpoint_id = created.stdout.split()[-1]
        job_id = asyncio.run(enqueue(redis_url, endpoint_id))
        args = ["--queues", WEBHOOKS_QUEUE, "--burst", "--no-ledger", "--worker-id", "hooks-1"]
        worker = manage(env, "queue_worker", *args)
        requests = [request for request, _ in receiver.log]
    finally:
        receiver.stop()

    assert worker.returncode == 0, worker.stderr
    (request,) = requests
    event = Webhook(SECRET).verify(request.get_data(), dict(request.headers))
    assert request.headers["webhook-id"] == job_id
    assert event["data"] == {"job_id": "j-9"} == json.loads(request.get_data())["data"]
    signature = request.headers["webhook-signature"].split(",")[1]
    output = worker.stdout + worker.stderr
    assert job_id in output  # the job's log lines are there ...
    assert SECRET not in output and signature not in output  # ... no secret
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        assert client.hget(f"aragora:queue:job:{job_id}", "status") == "completed"
    with contextlib.closing(sqlite3.connect(tmp_path / "db.sqlite3")) as db:
        rows = db.execute(
            "SELECT status_code, attempt, job_id FROM queue_app_webhookdelivery"
        ).fetchall()
        (stored,) = db.execute("SELECT secret_encrypted FROM queue_app_webhookendpoint").fetchone()
        health = db.execute(
            "SELECT success_count, failure_count FROM queue_app_webhookendpoint WHERE id = ?",
            (int(endpoint_id),),
        ).fetchone()
    assert rows == [(200, 1, job_id)] and health == (1, 0)
    assert SECRET not in stored  # encrypted at rest
