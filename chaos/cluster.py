"""The processes of a chaos run and the faults dealt to them.

One private redis-server with ``appendonly yes`` and ``Plan.workers`` worker slots, each running
``manage.py queue_worker --queues chaos`` (``chaos.settings``). A killed worker comes back
under a new id (``chaos-<slot>-<generation>``), as a restarted container would.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from chaos.plan import CHAOS_QUEUE, Plan
from queue_app.queue.redis.keys import Keys
from tests.process_support import RedisServer, WorkerProcesses

#: Consumer group of the queue (the library's default).
GROUP = "debate-workers"
KEYS = Keys()
STREAM = KEYS.stream(CHAOS_QUEUE)


@dataclass(slots=True)
class FaultLog:
    """What the faults did, for the in-flight bound and the report."""

    #: Deliveries held by each killed worker when it died.
    killed_in_flight: list[int] = field(default_factory=list)
    #: Job ids held by each frozen worker, and how long it stayed frozen.
    stopped_jobs: dict[str, list[str]] = field(default_factory=dict)
    stopped_seconds: list[float] = field(default_factory=list)
    #: Jobs processing when Redis was killed, and how long it stayed down.
    redis_in_flight: list[int] = field(default_factory=list)
    redis_down_seconds: list[float] = field(default_factory=list)


def until_redis_answers[T](call: Callable[[], T], seconds: float = 60.0) -> T:
    """Return ``call()``, retried while Redis is unreachable (it may be restarting)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except (redis.ConnectionError, redis.TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class ChaosCluster:
    """Start, kill, freeze and restart the run's redis-server and workers."""

    def __init__(self, plan: Plan, directory: Path) -> None:
        self.plan = plan
        self.redis = RedisServer(directory, appendonly=True)
        self.client = redis.Redis.from_url(self.redis.url, decode_responses=True)
        #: Environment of the workers, and of the producer (``chaos.run``).
        self.env = {
            "DJANGO_SETTINGS_MODULE": "chaos.settings",
            "REDIS_URL": self.redis.url,
            "CHAOS_RETENTION_SECONDS": str(plan.retention),
            "ARAGORA_QUEUE_CLAIM_IDLE_MS": str(plan.claim_idle_ms),
            "ARAGORA_QUEUE_RETRY_BASE_DELAY": "0.1",
            "ARAGORA_QUEUE_RETRY_MAX_DELAY": "1",
            "ARAGORA_QUEUE_LEDGER_MAXLEN": "0",
        }
        self.workers = WorkerProcesses(self.redis.url, directory, queues=CHAOS_QUEUE, env=self.env)
        self.slots: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.generations = [0] * plan.workers
        self.stopped: set[int] = set()
        self.faults = FaultLog()
        self.rng = random.Random(plan.seed + 2)

    def start_workers(self) -> None:
        """Start one worker per slot and wait until every one has registered."""
        self.slots = [self._spawn(slot) for slot in range(self.plan.workers)]
        ids = {worker_id for worker_id, _ in self.slots}
        deadline = time.monotonic() + 120
        while not ids <= set(self.client.zrange(KEYS.workers(), 0, -1)):
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not register within 120 s")
            time.sleep(0.2)

    def _spawn(self, slot: int) -> tuple[str, subprocess.Popen[bytes]]:
        worker_id = f"chaos-{slot}-{self.generations[slot]}"
        self.generations[slot] += 1
        flags = ("--concurrency", str(self.plan.concurrency), "--shutdown-timeout", "10")
        return worker_id, self.workers.start(worker_id, *flags)

    def kill_worker(self, slot: int) -> None:
        """SIGKILL the worker of ``slot`` (another slot if it is frozen); restart it soon after."""
        while slot in self.stopped:
            slot = (slot + 1) % self.plan.workers
        worker_id, process = self.slots[slot]
        process.send_signal(signal.SIGKILL)
        process.wait()
        self.faults.killed_in_flight.append(len(self._held_by(worker_id)))
        time.sleep(self.rng.uniform(0.5, 2.0))
        self.slots[slot] = self._spawn(slot)

    def freeze_worker(self, slot: int) -> None:
        """SIGSTOP the worker of ``slot`` until its jobs are taken over, then SIGCONT it."""
        self.stopped.add(slot)
        worker_id, process = self.slots[slot]
        began = time.monotonic()
        process.send_signal(signal.SIGSTOP)
        held = self._held_by(worker_id)
        self.faults.stopped_jobs[worker_id] = [job_id for _, job_id in held]
        deadline = began + self.plan.claim_idle_ms / 1000 * 6
        minimum = began + self.plan.claim_idle_ms / 1000 + 1
        while time.monotonic() < minimum or (
            self._held_by(worker_id) and time.monotonic() < deadline
        ):
            time.sleep(0.5)
        process.send_signal(signal.SIGCONT)
        self.faults.stopped_seconds.append(round(time.monotonic() - began, 1))
        self.stopped.discard(slot)

    def kill_redis(self) -> None:
        """SIGKILL redis-server, then start it again on the same port and AOF directory."""
        in_flight = until_redis_answers(
            lambda: self.client.zcard(KEYS.index(CHAOS_QUEUE, "processing"))
        )
        began = time.monotonic()
        self.redis.kill()
        time.sleep(1.0)
        self.redis.restart()
        self.faults.redis_in_flight.append(int(in_flight))
        self.faults.redis_down_seconds.append(round(time.monotonic() - began, 1))

    def _held_by(self, worker_id: str) -> list[tuple[str, str]]:
        """Return (entry, job id) of the deliveries ``worker_id`` holds (its pending list)."""

        def read() -> list[tuple[str, str]]:
            rows = self.client.xpending_range(STREAM, GROUP, "-", "+", 10_000, worker_id)
            held = []
            for row in rows:
                entries = self.client.xrange(STREAM, row["message_id"], row["message_id"])
                job_id = entries[0][1].get("job_id", "") if entries else ""
                held.append((row["message_id"], job_id))
            return held

        return until_redis_answers(read)

    def stop_workers(self) -> dict[str, Any]:
        """SIGTERM every worker; return each one's exit status (0 after a clean drain)."""
        for _, process in self.slots:
            process.send_signal(signal.SIGTERM)
        codes = {worker_id: process.wait(timeout=60) for worker_id, process in self.slots}
        self.workers.stop_all()
        return codes

    def close(self) -> None:
        """Kill whatever still runs."""
        self.workers.stop_all()
        self.client.close()
        self.redis.stop()
