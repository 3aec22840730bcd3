"""The run's traffic: the producer of chaos jobs and the observer of their final states.

The producer enqueues through ``django.tasks`` (``chaos_job.enqueue``), paced over the window;
an enqueue that raises is counted and tried again as a new job (the first may or may not
exist: it is not one "that returned"). The observer reads, every ``POLL_SECONDS``, the jobs
newly indexed as finished and records their status hash before retention removes it.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from chaos.cluster import KEYS
from chaos.plan import CHAOS_QUEUE

#: Seconds between two reads of the observer.
POLL_SECONDS = 1.0
#: Terminal statuses of jobs.
TERMINAL = ("completed", "failed", "cancelled")


@dataclass(slots=True)
class Produced:
    """What the producer enqueued: fate of each job id whose enqueue returned."""

    fates: dict[str, str] = field(default_factory=dict)
    #: Enqueue calls that raised (each was tried again as a new job).
    errors: int = 0
    seconds: float = 0.0


class Producer(threading.Thread):
    """Enqueue ``specs`` (millis, fate) evenly over ``window`` seconds."""

    def __init__(self, specs: list[tuple[int, str]], window: float) -> None:
        super().__init__(name="chaos-producer", daemon=True)
        self.specs = specs
        self.window = window
        self.produced = Produced()

    def run(self) -> None:
        """Enqueue every job, each no sooner than its turn."""
        from chaos.tasks import chaos_job  # after django.setup()

        began = time.monotonic()
        step = self.window / max(len(self.specs), 1)
        for number, (millis, fate) in enumerate(self.specs):
            delay = began + number * step - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            while True:
                try:
                    result = chaos_job.enqueue(millis=millis, fate=fate)
                except Exception:  # Redis down or restarting: a new job, a moment later
                    self.produced.errors += 1
                    time.sleep(0.2)
                    continue
                self.produced.fates[result.id] = fate
                break
        self.produced.seconds = round(time.monotonic() - began, 1)


@dataclass(frozen=True, slots=True)
class Final:
    """A job's status hash as the observer read it once the job was finished."""

    status: str
    worker_id: str
    #: ``worker`` of the stored result (who wrote it), "" without a result.
    result_worker: str
    error: str
    attempts: int


class Observer(threading.Thread):
    """Record every job that reaches a final state, from its status hash."""

    def __init__(self, url: str) -> None:
        super().__init__(name="chaos-observer", daemon=True)
        self.client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)
        self.finals: dict[str, Final] = {}
        #: Ids indexed as finished whose hash was gone or not finished when read.
        self.missing: set[str] = set()
        self.stop_event = threading.Event()
        self._since = 0.0

    def run(self) -> None:
        """Poll until ``stop_event`` is set, through Redis restarts."""
        while not self.stop_event.wait(POLL_SECONDS):
            try:
                self.poll()
            except (redis.ConnectionError, redis.TimeoutError):
                continue

    def poll(self) -> None:
        """Read the jobs indexed as finished since the last poll (with 5 s of overlap)."""
        now_ms = time.time() * 1000
        new: list[str] = []
        for status in TERMINAL:
            members = self.client.zrangebyscore(
                KEYS.index(CHAOS_QUEUE, status), self._since - 5000, "+inf"
            )
            new += [job_id for job_id in members if job_id not in self.finals]
        with self.client.pipeline(transaction=False) as pipe:
            for job_id in new:
                pipe.hmget(KEYS.job(job_id), "status", "worker_id", "result", "error", "attempts")
            rows = pipe.execute()
        for job_id, row in zip(new, rows, strict=True):
            self._record(job_id, row)
        self._since = now_ms

    def _record(self, job_id: str, row: list[Any]) -> None:
        status, worker_id, result, error, attempts = row
        if status not in TERMINAL:
            self.missing.add(job_id)
            return
        self.missing.discard(job_id)
        stored = json.loads(result) if result else None
        self.finals[job_id] = Final(
            status=status,
            worker_id=worker_id or "",
            result_worker=str(stored.get("worker", "")) if isinstance(stored, dict) else "",
            error=error or "",
            attempts=int(attempts or 0),
        )
