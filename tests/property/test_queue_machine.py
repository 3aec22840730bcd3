"""The real queue against a plain model: random runs of enqueue, dequeue, outcomes, cancel, claim.

Two consumers share one queue on the private redis-server. After every step each job's status and
attempts, and every count of ``get_queue_stats()``, equal the model's (``queue_model.py``).

Time: the scripts read Redis's clock, so the test moves time forward by moving every due time in
the delayed set back by the same amount (``advance``), which keeps their order. The delays and
steps are chosen so that a job is never close to due when the real seconds of a run are added:
a delay minus the steps taken is always 60 s away from zero, modulo 120 s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from queue_app.queue import Job, QueueConfig, RedisStreamsQueue
from tests.property.queue_model import QueueModel

T = TypeVar("T")
CONSUMERS = ("consumer-a", "consumer-b")
#: Delays (s): one step of ``advance`` makes SHORT due, the long step makes LONG due too.
SHORT, LONG = 60.0, 3660.0
STEPS = (120.0, 7200.0)
MACHINE_SETTINGS = settings(
    max_examples=25,
    stateful_step_count=40,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class QueueMachine(RuleBasedStateMachine):
    """Drive two consumers of a real queue and a model side by side."""

    jobs = Bundle("jobs")

    def __init__(self, redis_url: str) -> None:
        super().__init__()
        with redis.Redis.from_url(redis_url) as client:
            client.flushall()
        self.loop = asyncio.new_event_loop()
        self.config = QueueConfig(redis_url=redis_url)
        self.clients = [aioredis.from_url(redis_url, decode_responses=True) for _ in CONSUMERS]
        self.queues = {
            name: RedisStreamsQueue(client, name, self.config)
            for name, client in zip(CONSUMERS, self.clients, strict=True)
        }
        self.model = QueueModel()
        self.count = 0

    def run(self, call: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(call)

    def teardown(self) -> None:
        for client in self.clients:
            self.run(client.aclose())
        self.loop.close()

    @property
    def any_queue(self) -> RedisStreamsQueue:
        return self.queues[CONSUMERS[0]]

    @initialize()
    def create_queue(self) -> None:
        for queue in self.queues.values():
            self.run(queue.ensure_queue(self.config.default_queue))

    @rule(
        target=jobs,
        priority=st.sampled_from([0, 5, -3]),
        delay=st.sampled_from([0.0, 0.0, SHORT, LONG]),
        max_attempts=st.integers(1, 3),
    )
    def enqueue(self, priority: int, delay: float, max_attempts: int) -> str:
        self.count += 1
        job_id = f"job-{self.count:04d}"
        job = Job(payload={"n": self.count}, id=job_id, max_attempts=max_attempts)
        self.run(self.any_queue.enqueue(job, priority=priority, delay_seconds=delay))
        self.model.enqueue(job_id, priority, delay, max_attempts)
        time.sleep(0.002)  # due times of later calls fall in a later millisecond
        return job_id

    @precondition(lambda self: self.model.jobs)
    @rule(consumer=st.sampled_from(CONSUMERS))
    def dequeue(self, consumer: str) -> None:
        job = self.run(self.queues[consumer].dequeue(consumer, timeout_ms=0))
        assert (job.id if job else None) == self.model.dequeue(consumer)
        event("dequeue: started" if job else "dequeue: nothing")

    @precondition(lambda self: any(self.model.running.values()))
    @rule(data=st.data(), outcome=st.sampled_from(["completed", "failed", "requeue", "retry"]))
    def finish(self, data: st.DataObject, outcome: str) -> None:
        consumer, job_id = data.draw(st.sampled_from(self._running()))
        delay = data.draw(st.sampled_from([SHORT, LONG]))
        queue = self.queues[consumer]
        if outcome == "completed":
            written = self.run(queue.complete(job_id, {"ok": True}))
        elif outcome == "failed":
            written = self.run(queue.fail(job_id, "boom"))
        elif outcome == "requeue":
            written = self.run(queue.nack(job_id))
        else:
            written = self.run(queue.retry(job_id, "again", delay))
            time.sleep(0.002)
        assert written == self.model.finish(consumer, job_id, outcome, delay)
        event(f"finish {outcome}: {'written' if written else 'fenced'}")

    @rule(job_id=jobs)
    def cancel(self, job_id: str) -> None:
        cancelled = self.run(self.any_queue.cancel(job_id))
        assert cancelled == self.model.cancel(job_id)
        event(f"cancel: {cancelled}")

    @precondition(lambda self: self.model.stats()["pending_in_group"])
    @rule(consumer=st.sampled_from(CONSUMERS))
    def claim(self, consumer: str) -> None:
        claimed = self.run(self.queues[consumer].claim_stale_jobs(0))
        assert claimed == self.model.claim(consumer)
        event("claim: took over" if claimed else "claim: nothing")

    @precondition(lambda self: self.model.stats()["delayed"])
    @rule(step=st.sampled_from(STEPS))
    def advance(self, step: float) -> None:
        self.run(self._move_due_times(step))
        self.model.clock += step

    @precondition(lambda self: self.model.stats()["delayed"])
    @rule()
    def promote(self) -> None:
        self.run(self.any_queue.promote())
        self.model.promote()

    @invariant()
    def statuses_and_counts_agree(self) -> None:
        for job_id, expected in self.model.jobs.items():
            job = self.run(self.any_queue.get_status(job_id))
            assert job is not None
            assert (job.status, job.attempts) == (expected.status, expected.attempts), job_id
        assert self.run(self.any_queue.get_queue_stats()) == self.model.stats()

    def _running(self) -> list[tuple[str, str]]:
        return sorted((c, j) for c, running in self.model.running.items() for j in running)

    async def _move_due_times(self, seconds: float) -> None:
        """Advance the queue's clock for delayed jobs: every due time moves back ``seconds``."""
        key = self.any_queue.keys.delayed(self.config.default_queue)
        due = await self.any_queue.redis.zrange(key, 0, -1, withscores=True)
        if due:
            moved = {member: score - seconds * 1000 for member, score in due}
            await self.any_queue.redis.zadd(key, moved, xx=True)


def test_queue_machine_agrees_with_its_model(redis_url: str) -> None:
    run_state_machine_as_test(lambda: QueueMachine(redis_url), settings=MACHINE_SETTINGS)
