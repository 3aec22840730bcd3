"""The floor rows: the least any Redis Streams queue on redis-py's asyncio client can do.

Not a queue: no job record, status, retry, recovery, cancel, fencing, ledger or metrics. The
producer sends one ``XADD`` of the job's ``sent`` field (a batch: the ``XADD``s in one pipeline);
the worker reads with ``XREADGROUP`` (blocking, as many entries as it has free slots), runs the
benchmark job (``shape.arecord``) in one eager asyncio task per entry, up to ``--concurrency`` at
once, and acknowledges finished entries with one ``XACK`` sent with its next read. The same
client library and event loop as this project's worker, without the project's work: what it
reaches bounds what the project's rows can reach on this machine (bench/README.md, "Floors").

``python -m peers.floor_app --concurrency N`` runs the worker until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import redis.asyncio

from peers import shape

STREAM = "floor:stream"
GROUP = "floor"


@contextlib.asynccontextmanager
async def producer() -> AsyncIterator[Callable[[float], Any]]:
    """Yield the enqueue call: one ``XADD``."""
    client = shape.async_client()

    async def enqueue(sent: float) -> None:
        await client.xadd(STREAM, {"sent": repr(sent)})

    try:
        yield enqueue
    finally:
        await client.aclose()


async def enqueue_many(count: int) -> None:
    """Enqueue ``count`` jobs: their ``XADD``s in one pipeline."""
    client = shape.async_client()
    try:
        async with client.pipeline(transaction=False) as pipe:
            for _ in range(count):
                pipe.xadd(STREAM, {"sent": "0.0"})
            await pipe.execute()
    finally:
        await client.aclose()


class FloorWorker:
    """Read entries into at most ``concurrency`` running jobs, acknowledging in the same trip.

    Each read waits for a quarter of the slots to be free (at least one) and carries the
    ``XACK`` of the entries finished since the last read in the same pipeline: for a batch of
    jobs, one round trip besides the jobs' own. Jobs run as eager tasks (to their first await
    at once), as the project's worker runs them.
    """

    def __init__(self, client: redis.asyncio.Redis, concurrency: int) -> None:
        self.client = client
        self.free = concurrency
        self.batch = max(1, concurrency // 4)
        self.slot_freed = asyncio.Event()
        self.done: list[bytes] = []
        self.running: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Read and start jobs forever."""
        with contextlib.suppress(redis.ResponseError):  # BUSYGROUP: made by another process
            await self.client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        consumer = f"floor-{id(self)}"
        async with self.client.pipeline(transaction=False) as pipe:
            while True:
                while self.free < self.batch:
                    self.slot_freed.clear()
                    await self.slot_freed.wait()
                done, self.done = self.done, []
                if done:
                    pipe.xack(STREAM, GROUP, *done)
                pipe.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=self.free, block=1000)
                *_, reply = await pipe.execute()
                for _, entries in reply or ():
                    for entry_id, fields in entries:
                        self.start(entry_id, float(fields[b"sent"]))

    def start(self, entry_id: bytes, sent: float) -> None:
        """Run one job in its own task."""
        self.free -= 1
        task = asyncio.eager_task_factory(asyncio.get_running_loop(), self.job(entry_id, sent))
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    async def job(self, entry_id: bytes, sent: float) -> None:
        """Do the benchmark job, then free its slot; its entry goes with the next read."""
        try:
            await shape.arecord(sent)
        finally:
            self.done.append(entry_id)
            self.free += 1
            self.slot_freed.set()


def main() -> None:
    """Parse the worker's flags and run it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=int, required=True)
    args = parser.parse_args()
    client = redis.asyncio.Redis.from_url(shape.redis_url())
    asyncio.run(FloorWorker(client, args.concurrency).run())


if __name__ == "__main__":
    main()
