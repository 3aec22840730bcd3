"""Redis stays bounded: declared queues, pruned priority levels, forgotten dead consumers,
stats in a fixed number of round trips, memory back to its baseline once retention passes."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import TYPE_CHECKING, Any

import pytest

from queue_app.queue import (
    InvalidJob,
    Job,
    OutcomeRow,
    QueueConfig,
    RedisStreamsQueue,
    UndeclaredQueue,
)
from queue_app.queue.redis import LedgerReader
from queue_app.queue.redis.core import check_queue_name
from tests.queue_ops import take

if TYPE_CHECKING:
    from tests.integration.conftest import QueueFactory
    from tests.round_trips import RoundTrips

P = "aragora:queue:"


async def keys(queue: RedisStreamsQueue) -> set[str]:
    return {key async for key in queue.redis.scan_iter(count=1000)}


async def consumers(queue: RedisStreamsQueue, stream: str) -> dict[str, int]:
    """Return the group's consumers on ``stream`` and how many entries each holds."""
    infos = await queue.redis.xinfo_consumers(stream, queue.group_name)
    return {info["name"]: int(info["pending"]) for info in infos}


# -- declared queues ------------------------------------------------------------------------------


async def test_undeclared_queue_is_refused_and_gets_no_key(
    make_queue: QueueFactory, queue_config: QueueConfig
) -> None:
    config = dataclasses.replace(queue_config, queues=frozenset({"debates", "extra"}))
    queue = await make_queue(config=config)
    before = await keys(queue)

    with pytest.raises(UndeclaredQueue, match="'junk-1' is not declared") as refused:
        await queue.enqueue(Job(payload={}), queue_name="junk-1")
    assert isinstance(refused.value, InvalidJob)
    with pytest.raises(UndeclaredQueue):
        await queue.enqueue_many([Job(payload={})], "junk-2")
    with pytest.raises(UndeclaredQueue):
        await queue.dequeue_many("w", 1, timeout_ms=0, queue_names=["junk-3"])
    stats = await queue.get_queues_stats(["junk-4", "debates"])
    assert stats["junk-4"]["stream_length"] == 0 and stats["junk-4"]["pending"] == 0
    assert await queue.tracker.list_jobs(queue_name="junk-5") == []
    assert await keys(queue) == before

    await queue.enqueue(Job(payload={}), queue_name="extra")
    assert await queue.redis.smembers(f"{P}queues") == {"debates", "extra"}


def test_queue_config_checks_declared_queues() -> None:
    with pytest.raises(ValueError, match="default queue 'debates'"):
        QueueConfig(queues=frozenset({"tasks"}))
    with pytest.raises(ValueError, match="invalid queue names"):
        QueueConfig(queues=frozenset({"debates", "a b"}))
    assert QueueConfig().queues is None and QueueConfig().declares("anything")


@pytest.mark.parametrize("name", ["abc\n", "", "a" * 65, "a:b", "ok\nstill"])
def test_check_queue_name_refuses_names_keys_cannot_hold(name: str) -> None:
    with pytest.raises(InvalidJob):
        check_queue_name(name)


# -- priority levels ------------------------------------------------------------------------------


async def test_empty_priority_level_is_pruned_while_a_reader_waits_on_it(
    make_queue: QueueFactory,
) -> None:
    queue, producer = await make_queue("reader"), await make_queue("producer")
    urgent = Job(payload={})
    await producer.enqueue(urgent, priority=7)
    assert [job.id for job in await take(queue, 1)] == [urgent.id]
    await queue.complete(urgent.id)
    assert await queue.redis.exists(f"{P}debates:stream:p7") == 1

    reader = asyncio.create_task(queue.dequeue_many("w", 1, timeout_ms=10_000))
    await blocked_in_xreadgroup(queue)
    await producer.promote(["debates"])
    assert await queue.redis.exists(f"{P}debates:stream:p7") == 0
    assert await queue.redis.zrange(f"{P}debates:levels", 0, -1) == ["0"]

    later = Job(payload={})
    await producer.enqueue(later)
    assert [job.id for job in await reader] == [later.id]
    again = Job(payload={})
    await producer.enqueue(again, priority=7)
    assert [job.id for job in await take(queue, 1)] == [again.id]


async def blocked_in_xreadgroup(queue: RedisStreamsQueue) -> None:
    """Wait until a client is blocked in XREADGROUP (the reader waits on every level)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        clients = await queue.redis.client_list()
        if any(c["cmd"] == "xreadgroup" and "b" in c["flags"] for c in clients):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no reader blocked in XREADGROUP")


async def test_level_with_entries_is_kept(make_queue: QueueFactory) -> None:
    queue = await make_queue()
    await queue.enqueue(Job(payload={}), priority=3)
    running = Job(payload={})
    await queue.enqueue(running, priority=-2)
    await take(queue, 2)
    await queue.enqueue(Job(payload={}), priority=3)
    await queue.promote(["debates"])
    levels = await queue.redis.zrange(f"{P}debates:levels", 0, -1)
    assert sorted(levels) == ["-2", "0", "3"]


async def test_enqueue_refuses_priorities_outside_the_range(make_queue: QueueFactory) -> None:
    queue = await make_queue()
    for priority in (1001, -1001, True):
        with pytest.raises(InvalidJob, match="priority"):
            await queue.enqueue(Job(payload={}), priority=priority)


# -- consumers ------------------------------------------------------------------------------------


async def test_claim_forgets_dead_consumers_once_their_deliveries_are_taken(
    make_queue: QueueFactory,
) -> None:
    dead, live = await make_queue("dead-1"), await make_queue("live-1")
    ids = [await dead.enqueue(Job(payload={"i": i}), priority=p) for i, p in enumerate((5, 0, 0))]
    assert len(await take(dead, 3)) == 3
    stream, urgent = f"{P}debates:stream", f"{P}debates:stream:p5"
    assert (await consumers(dead, stream))["dead-1"] == 2

    # Only one entry taken over: the dead consumer still holds two on the normal stream.
    assert await live.claim_stale_jobs(0, ["debates"], limit=1) == 1
    assert await consumers(live, urgent) == {"live-1": 1}
    assert (await consumers(live, stream))["dead-1"] == 2

    # Idle 0 takes every entry, the live consumer's own one too.
    assert await live.claim_stale_jobs(0, ["debates"]) == 3
    assert await consumers(live, stream) == {"live-1": 2}
    done: list[Job] = []
    deadline = time.monotonic() + 5
    while len(done) < 3 and time.monotonic() < deadline:
        done += await live.dequeue_many("live-1", 3, timeout_ms=100)
    await live.finish_many([(job.id, "", "completed", "null", 0) for job in done])
    assert sorted(job.id for job in done) == sorted(ids)


# -- statistics -----------------------------------------------------------------------------------


async def test_stats_of_many_queues_cost_two_round_trips(
    make_queue: QueueFactory, round_trips: RoundTrips
) -> None:
    names = [f"q{i}" for i in range(40)]
    queue = await make_queue()
    for name in names:
        await queue.enqueue(Job(payload={}), queue_name=name, priority=len(name) % 3)
    costs = {}
    for count in (1, 5, 40):
        round_trips.reset()
        stats = await queue.get_queues_stats(names[:count])
        costs[count] = round_trips.count
        assert [s["pending"] for s in stats.values()] == [1] * count
    assert costs == {1: 2, 5: 2, 40: 2}


# -- memory ---------------------------------------------------------------------------------------


async def test_redis_memory_returns_to_its_baseline_once_retention_passes(
    make_queue: QueueFactory, queue_config: QueueConfig
) -> None:
    config = dataclasses.replace(queue_config, retention_seconds=3)
    queue = await make_queue(config=config)
    reader = LedgerReader(queue.redis, "ledger-1", config)
    await run_jobs(queue, reader, 30)
    baseline = await settled(queue, None)

    await run_jobs(queue, reader, 3000)
    peak = await footprint(queue)
    after = await settled(queue, baseline)
    assert set(after) == set(baseline)
    assert sum(after.values()) <= sum(baseline.values()) + 2048
    assert sum(peak.values()) > sum(baseline.values()) + 300_000  # the indexes alone
    minutes = [key async for key in queue.redis.scan_iter(f"{P}debates:m:*")]
    assert 1 <= len(minutes) <= 3  # per-minute counters: 2 hours of them at most, not per job


async def run_jobs(queue: RedisStreamsQueue, reader: LedgerReader, count: int) -> None:
    """Enqueue ``count`` jobs on three priorities, finish them (1 in 10 fails), drain the ledger."""
    jobs = [Job(payload={"question": "x" * 200, "i": i}) for i in range(count)]
    for index, priority in enumerate((0, 4, -3)):
        await queue.enqueue_many(jobs[index::3], priority=priority)
    while taken := await queue.dequeue_many("w", 500, timeout_ms=100):
        outcomes: list[OutcomeRow] = [
            (job.id, "", "failed" if i % 10 == 0 else "completed", '{"ok":true}', 0)
            for i, job in enumerate(taken)
        ]
        await queue.finish_many(outcomes)
    assert (await queue.get_queue_stats())["stream_length"] == 0
    while events := await reader.read(count=5000, block_ms=10):
        await reader.ack(events)


async def footprint(queue: RedisStreamsQueue) -> dict[str, int]:
    """Return the bytes each key uses (per-minute counters left out: they expire in 2 hours)."""
    names = sorted(key for key in await keys(queue) if ":m:" not in key)
    async with queue.redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.memory_usage(name, samples=0)
        sizes: list[Any] = await pipe.execute()
    return {name: int(size or 0) for name, size in zip(names, sizes, strict=True)}


async def settled(queue: RedisStreamsQueue, baseline: dict[str, int] | None) -> dict[str, int]:
    """Promote (which prunes) until no job key is left and the keys are those of ``baseline``."""
    deadline = time.monotonic() + 15
    while True:
        await queue.promote(["debates"])
        found = await footprint(queue)
        jobs_left = any(":job:" in key for key in found)
        if not jobs_left and (baseline is None or set(found) == set(baseline)):
            return found
        if time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.2)
