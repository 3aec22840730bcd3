"""Consumer side of RedisStreamsQueue: read, start and own deliveries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..base import Job
from .connect import is_cluster_client
from .core import Delivery, QueueCore
from .lane import Lane, pipelined
from .outage import translate_errors
from .scripts import SCRIPTS, Call, load, lost
from .status import job_from_values, text

#: Longest single XREADGROUP block, so that due delayed jobs are promoted within it.
POLL_MS = 500
#: Tries of a take while restoring what a Redis restart lost (scripts, then groups).
RECOVERY_ATTEMPTS = 3
#: Most entries of one stream a consumer looks at when it takes back what lost replies started.
ORPHANS_PER_LEVEL = 1000


class QueueConsumer(QueueCore):
    """Take jobs: one script call per batch under load, one blocking read when idle."""

    @translate_errors
    async def dequeue(
        self, worker_id: str, timeout_ms: int = 5000, queue_name: str | None = None
    ) -> Job | None:
        """Take the next job of ``queue_name``, higher priority first, waiting up to the timeout."""
        jobs = await self.dequeue_many(worker_id, 1, timeout_ms, [self._queue(queue_name)])
        return jobs[0] if jobs else None

    @translate_errors
    async def dequeue_many(
        self,
        worker_id: str,
        count: int,
        timeout_ms: int = 5000,
        queue_names: Sequence[str] | None = None,
    ) -> list[Job]:
        """Start up to ``count`` jobs from the queues; block up to ``timeout_ms`` for the first.

        A call that fails on the connection may have started jobs in Redis whose reply never
        came: the next call first takes those back (``_take_back_orphans``) and starts them
        again, instead of leaving them to the stale claim after ``claim_idle_ms``.
        """
        queues = list(queue_names or [self.config.default_queue])
        try:
            return await self._dequeue_many(worker_id, count, timeout_ms, queues)
        except (RedisConnectionError, RedisTimeoutError, OSError):
            self._replies_lost = True
            raise

    async def take_after(
        self, commands: list[tuple[Any, ...]], worker_id: str, count: int, queue: str
    ) -> tuple[list[Any], list[Job]]:
        """Run ``commands``, then start up to ``count`` jobs of ``queue`` without waiting: one
        round trip (on the take lane) when no owned entry waits to start.

        Returns the commands' replies (errors in place) and the jobs started.
        """
        try:
            return await self._take_after(commands, worker_id, count, [queue])
        except (RedisConnectionError, RedisTimeoutError, OSError):
            self._replies_lost = True
            raise

    async def _take_after(
        self, commands: list[tuple[Any, ...]], worker_id: str, count: int, queues: list[str]
    ) -> tuple[list[Any], list[Job]]:
        await self._prepare_take(queues)
        if self._drained == tuple(queues) and not self._owned:  # the caller's wait takes next
            return (await self._execute_many(commands) if commands else []), []
        if self._owned:
            replies = await self._execute_many(commands) if commands else []
            return replies, await self._take(worker_id, count, queues)
        calls = self._take_calls(worker_id, count, queues)
        takes = [SCRIPTS["take"].command(keys, args) for keys, args in calls]
        *replies, taken = await self._execute_many([*commands, *takes])
        if await self._recover([taken], queues):
            return replies, await self._take(worker_id, count, queues)
        return replies, self._taken(queues, [taken])

    async def _prepare_take(self, queues: list[str]) -> None:
        """Create the queues' groups once; take back what calls with lost replies started."""
        for queue in queues:
            await self.ensure_queue(queue)
        if self._may_have_lost_replies():
            await self._take_back_orphans(queues)

    async def _dequeue_many(
        self, worker_id: str, count: int, timeout_ms: int, queues: list[str]
    ) -> list[Job]:
        await self._prepare_take(queues)
        deadline = time.monotonic() + timeout_ms / 1000
        self._woken = False
        # Right after a take ran the queues dry, the blocking read comes first (it returns at
        # once what was added since).
        drained = self._drained == tuple(queues) and not self._owned and timeout_ms > 0
        jobs = [] if drained else await self._take(worker_id, count, queues)
        while not jobs:
            block = self._block_ms(queues, deadline)
            if block is None or self._woken:
                break
            if self._can_read_and_take(queues):
                jobs = await self._read_and_take(worker_id, count, queues, block)
            else:
                await self._wait_for_entry(queues, block)
                jobs = await self._take(worker_id, count, queues)
        return jobs

    def _may_have_lost_replies(self) -> bool:
        """Tell whether a call failed on the connection since the last look: one that raised,
        or a round trip of the take lane that failed, retried or not (the client's retries
        hide a lost reply from the caller)."""
        failed = self.take_lane.failed_round_trips if self.take_lane is not None else 0
        lost = self._replies_lost or failed != self._lane_failures_seen
        self._replies_lost, self._lane_failures_seen = False, failed
        return lost

    async def _take_back_orphans(self, queues: list[str]) -> None:
        """Own again the entries this consumer holds in Redis but runs none of.

        A take or start whose reply was lost started them in Redis (their jobs processing under
        a token nobody holds); the claim script puts them back to pending for the next start.
        """
        known = {(d.queue, d.level, d.entry) for d in [*self._owned, *self._running.values()]}
        for queue, levels in (await self.levels(queues)).items():
            orphans: list[str] = []
            for level in levels:
                entries = await self._held_entries(self.keys.stream(queue, level))
                orphans += [
                    item for e in entries if (queue, level, e) not in known for item in (level, e)
                ]
            if orphans:
                await self._claim(queue, [self.consumer_name, 0, len(orphans) // 2, *orphans])

    async def _held_entries(self, stream: str) -> list[str]:
        """Return the entries of ``stream`` this consumer holds (none when a restart lost the
        group: the take restores it)."""
        try:
            held = await self._redis.xpending_range(
                stream, self.group_name, "-", "+", ORPHANS_PER_LEVEL, self.consumer_name
            )
        except ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            return []
        return [text(pending["message_id"]) for pending in held]

    def wake(self) -> None:
        """Make a ``dequeue_many`` waiting in this process return after its current poll."""
        self._woken = True

    def _block_ms(self, queues: list[str], deadline: float) -> int | None:
        remaining = int((deadline - time.monotonic()) * 1000)
        if remaining <= 0:
            return None
        due = [ms for queue in queues if (ms := self._next_due_ms.get(queue, -1)) >= 0]
        return max(1, min([remaining, POLL_MS, *due]))

    async def _take(self, worker_id: str, count: int, queues: list[str]) -> list[Job]:
        """Start owned entries first, then read and start new ones in one script call per queue."""
        if self._owned:
            owned = await self._start(worker_id, count)
            if owned:
                return owned
        for _ in range(RECOVERY_ATTEMPTS):
            replies = await self._take_replies(self._take_calls(worker_id, count, queues))
            if not await self._recover(replies, queues):
                break
        return self._taken(queues, replies)

    async def _take_replies(self, calls: list[Call]) -> list[Any]:
        """Run the take calls; return their replies, or errors in place, as ``run_many`` does.

        A single call (one queue) goes on the take lane: no pipeline to build for one command.
        """
        if len(calls) > 1:
            return await SCRIPTS["take"].run_many(self._redis, calls)
        return [await SCRIPTS["take"].run_one(self._caller(self.take_lane), *calls[0])]

    def _take_calls(
        self, worker_id: str, count: int, queues: list[str], cursors: bool = False
    ) -> list[Call]:
        """Return the take call of each queue; with ``cursors``, after a blocking read."""
        share = -(-count // len(queues))
        args = [self.consumer_name, worker_id, share]
        return [
            self.script_call("take", queue, [*args, *(self._cursors[queue] if cursors else ())])
            for queue in queues
        ]

    def _taken(self, queues: list[str], replies: list[Any]) -> list[Job]:
        """Return the jobs the take calls started; keep their cursors and due times."""
        jobs: list[Job] = []
        for queue, reply in zip(queues, replies, strict=True):
            if isinstance(reply, Exception):
                self._cursors.pop(queue, None)
                continue
            self.dead_lettered[queue] += int(reply[0])
            self._next_due_ms[queue] = int(reply[1])
            self._cursors[queue] = [text(item) for item in reply[2]]
            jobs.extend(self._started(queue, reply[3:]))
        dry = all(self._cursors.get(queue) for queue in queues)
        self._drained = tuple(queues) if dry else ()
        return jobs

    async def _execute_many(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Run commands in one round trip: on the take lane outside a span, else a pipeline."""
        lane = self._caller(self.take_lane)
        if isinstance(lane, Lane):
            return await lane.execute_many(*commands)
        return await pipelined(self._redis, commands)

    def _can_read_and_take(self, queues: list[str]) -> bool:
        return not is_cluster_client(self._redis) and all(self._cursors.get(q) for q in queues)

    async def _read_and_take(
        self, worker_id: str, count: int, queues: list[str], block: int
    ) -> list[Job]:
        """Block until an entry arrives, then start jobs: one round trip on a single server.

        The take calls follow the blocking XREADGROUP in one pipeline, so Redis runs them as
        soon as the read returns; they start what it delivered (the entries of this consumer
        newer than the cursors of the last take). An entry the read returned and no take
        started (no free slot, or a script the server lost) is owned: the next take starts it.
        """
        owners = {
            self.keys.stream(queue, level): (queue, level)
            for queue in queues
            for level in self._cursors[queue][::2]
        }
        calls = self._take_calls(worker_id, count, queues, cursors=True)
        read_args = ("GROUP", self.group_name, self.consumer_name, "COUNT", 1, "BLOCK", block)
        commands = [
            ("XREADGROUP", *read_args, "STREAMS", *owners, *[">"] * len(owners)),
            *(SCRIPTS["take"].command(keys, args) for keys, args in calls),
        ]
        read, *replies = await self._execute_many(commands)
        jobs = self._taken(queues, replies)
        started = {job.id for job in jobs}
        if not isinstance(read, Exception):
            self._own(d for d in self._entries(read or [], owners) if d.job_id not in started)
        elif not str(read).startswith("UNBLOCKED"):  # not a priority stream deleted meanwhile
            replies.append(read)
        if await self._recover(replies, queues) and len(jobs) < count:
            jobs += await self._take(worker_id, count - len(jobs), queues)
        return jobs

    async def _wait_for_entry(self, queues: list[str], block: int) -> None:
        """Block on every stream of the queues until one entry arrives; it becomes owned.

        On a cluster the streams of each slot need their own read: the first to answer ends
        the wait, and the others go on (their entries become owned when they arrive).
        """
        owners = {
            self.keys.stream(queue, level): (queue, level)
            for queue, levels in (await self.levels(queues)).items()
            for level in levels
        }
        groups = self.keys.by_slot(owners)
        if len(groups) == 1:
            await self._read_into_owned(groups[0], owners, block, queues)
            return
        reads = []
        for streams in groups:
            slot = frozenset(streams)
            if slot not in self._slot_reads:
                waiting = self._read_into_owned(streams, owners, block, queues)
                self._slot_reads[slot] = asyncio.ensure_future(waiting)
            reads.append(self._slot_reads[slot])
        await asyncio.wait(reads, return_when=asyncio.FIRST_COMPLETED)
        for slot, read in list(self._slot_reads.items()):
            if read.done():
                del self._slot_reads[slot]
                read.result()  # raise what the read raised

    async def _read_into_owned(
        self, streams: list[str], owners: dict[str, tuple[str, str]], block: int, queues: list[str]
    ) -> None:
        try:
            reply = await self._redis.xreadgroup(
                self.group_name,
                self.consumer_name,
                dict.fromkeys(streams, ">"),
                count=1,
                block=block,
            )
        except ResponseError as error:
            # An empty priority stream was deleted while we waited on it (see promote.lua).
            if not str(error).startswith("UNBLOCKED"):
                await self._recover([error], queues)
            return
        self._own(self._entries(reply or [], owners))

    async def stop_reads(self) -> None:
        """Cancel the blocking reads still waiting on a cluster's other slots."""
        reads, self._slot_reads = list(self._slot_reads.values()), {}
        for read in reads:
            read.cancel()
        await asyncio.gather(*reads, return_exceptions=True)

    async def _recover(self, replies: list[Any], queues: list[str]) -> bool:
        """Restore scripts or groups a Redis restart lost (True: run again); raise other errors."""
        errors = [reply for reply in replies if isinstance(reply, Exception)]
        lost_group = [e for e in errors if "NOGROUP" in str(e)]
        lost_library = [e for e in errors if lost(e)]
        for error in errors:
            if error not in lost_group and error not in lost_library:
                raise error
        if lost_library:
            await load(self._redis)
        if lost_group:
            await self._restore_groups(queues)
        return bool(errors)

    async def _restore_groups(self, queues: list[str]) -> None:
        """Create the group again on every stream of the queues (a restart lost it)."""
        self._known_queues.difference_update(queues)
        for queue in queues:
            await self.ensure_queue(queue)
        async with self._redis.pipeline(transaction=False) as pipe:
            for queue, levels in (await self.levels(queues)).items():
                for level in levels:
                    stream = self.keys.stream(queue, level)
                    pipe.xgroup_create(stream, self.group_name, id="0", mkstream=True)
            await pipe.execute(raise_on_error=False)

    def _entries(self, reply: Any, owners: dict[str, tuple[str, str]]) -> Iterable[Delivery]:
        items = reply.items() if isinstance(reply, dict) else reply
        for stream, messages in items:
            queue, level = owners[text(stream)]
            for message in messages[0] if isinstance(reply, dict) else messages:
                entry, fields = message
                fields = {text(k): text(v) for k, v in (fields or {}).items()}
                yield Delivery(queue, level, text(entry), fields.get("job_id", ""))

    async def _claim(self, queue: str, args: list[Any]) -> int:
        """Run the claim script on ``queue``; own the deliveries it took over, return how many."""
        items = [text(item) for item in await self._run("claim", queue, args)]
        self._own(
            Delivery(queue, items[i], items[i + 1], items[i + 2]) for i in range(0, len(items), 3)
        )
        return len(items) // 3

    def _own(self, deliveries: Iterable[Delivery]) -> None:
        owned = list(deliveries)
        if owned:
            self._drained = ()
            self._owned.extend(owned)
            self._owned.sort(key=lambda d: -int(d.level))

    async def _start(self, worker_id: str, count: int) -> list[Job]:
        self._drained = ()
        batch, self._owned = self._owned[:count], self._owned[count:]
        by_queue: dict[str, list[Delivery]] = {}
        for delivery in batch:
            by_queue.setdefault(delivery.queue, []).append(delivery)
        jobs: list[Job] = []
        for queue, deliveries in by_queue.items():
            args: list[Any] = [worker_id, len(deliveries)]
            for d in deliveries:
                args.extend((d.level, d.entry, d.job_id))
            keys = self.keys.jobs(queue, [d.job_id for d in deliveries])
            streams = {self.keys.stream(queue, d.level): None for d in deliveries if d.level != "0"}
            reply = await self._run("start", queue, args, [*keys, *streams])
            self.dead_lettered[queue] += int(reply[0])
            jobs.extend(self._started(queue, reply[1:]))
        jobs.sort(key=lambda job: -job.priority)
        return jobs

    def _started(self, queue: str, replies: list[Any]) -> list[Job]:
        jobs = []
        for values in replies:
            job = job_from_values(values)
            token = text(values[-1])
            job.delivery_token = token
            entry, _, attempts = token.rpartition("/")
            level = text(values[-2]) if values[-2] else "0"
            self._running[job.id] = Delivery(
                queue, level, entry, job.id, token, int(attempts), job.max_attempts
            )
            jobs.append(job)
        return jobs
