"""The middleware chain around jobs a real worker runs: order of layers and hooks, failing hooks."""

from __future__ import annotations

import asyncio
from typing import Any

from queue_app.queue import Job, JobStatus, RedisStreamsQueue
from workers import BaseWorker, Middleware, MiddlewareChain, WorkerOptions
from workers.runtime.middleware import CallNext


class Recorder(Middleware):
    """Write what the chain calls, in order, to a shared list."""

    def __init__(self, name: str, calls: list[str]) -> None:
        self.name = name
        self.calls = calls

    async def wrap_job(self, job: Job, call_next: CallNext) -> Any:
        self.calls.append(f"{self.name} enters")
        try:
            return await call_next(job)
        finally:
            self.calls.append(f"{self.name} leaves")

    def on_start(self, job: Job) -> None:
        self.calls.append(f"{self.name} start")

    def on_end(self, job: Job) -> None:
        self.calls.append(f"{self.name} end")

    def on_outcome(
        self, job: Job, outcome: str, duration: float, error: BaseException | None
    ) -> None:
        self.calls.append(f"{self.name} {outcome}")


class Observer(Middleware):
    """Only hooks, no ``wrap_job``."""

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def on_start(self, job: Job) -> None:
        self.calls.append("observer start")


class BrokenHooks(Middleware):
    """Every hook of an attempt raises."""

    def on_start(self, job: Job) -> None:
        raise RuntimeError("on_start broke")

    def on_end(self, job: Job) -> None:
        raise RuntimeError("on_end broke")

    def on_outcome(
        self, job: Job, outcome: str, duration: float, error: BaseException | None
    ) -> None:
        raise RuntimeError("on_outcome broke")


async def run_one(queue: RedisStreamsQueue, chain: MiddlewareChain, calls: list[str]) -> Job:
    """Run one job whose handler records its run, in a burst worker with ``chain``."""

    async def handler(job: Job) -> str:
        calls.append("handler")
        return "done"

    job_id = await queue.enqueue(Job(payload={}, metadata={"job_type": "t"}), queue_name="mw")
    options = WorkerOptions(worker_id="w-mw", queues=("mw",), burst=True)
    worker = BaseWorker(queue, {"t": handler}, options, middleware=chain)
    await asyncio.wait_for(worker.start(), 20)
    job = await queue.get_status(job_id)
    assert job is not None
    return job


async def test_layers_wrap_in_listed_order_and_hooks_surround_them(
    queue: RedisStreamsQueue,
) -> None:
    calls: list[str] = []
    chain = MiddlewareChain([Recorder("outer", calls), Observer(calls), Recorder("inner", calls)])

    job = await run_one(queue, chain, calls)

    assert job.status is JobStatus.COMPLETED and job.result == "done"
    assert calls == [
        "outer start",
        "observer start",
        "inner start",
        "outer enters",
        "inner enters",
        "handler",
        "inner leaves",
        "outer leaves",
        "inner end",
        "outer end",
        "outer completed",
        "inner completed",
    ]


async def test_failing_hooks_do_not_fail_the_job(queue: RedisStreamsQueue) -> None:
    calls: list[str] = []
    chain = MiddlewareChain([BrokenHooks(), Recorder("after", calls)])

    job = await run_one(queue, chain, calls)

    assert job.status is JobStatus.COMPLETED and job.result == "done"
    assert calls == [
        "after start",
        "after enters",
        "handler",
        "after leaves",
        "after end",
        "after completed",
    ]


def test_layers_without_wrap_job_leave_the_handler_unwrapped() -> None:
    async def handler(job: Job) -> None:
        return None

    chain = MiddlewareChain([Observer([]), BrokenHooks()])

    assert chain.wrap(handler) is handler
