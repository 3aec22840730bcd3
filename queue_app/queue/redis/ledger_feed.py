"""LedgerReader: drain the per-queue job event streams that feed the database ledger."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from json.scanner import make_scanner
from typing import Any, NamedTuple, cast

from redis.exceptions import ResponseError

from ..base import Job
from ..config import QueueConfig
from .keys import JOB_FIELDS, Keys
from .outage import translate_errors
from .scripts import SCRIPTS, load, lost
from .status import JobStatusTracker, job_from_hash, text

#: Consumer group of ledger readers on every ``P q:ledger`` stream.
LEDGER_GROUP = "ledger-writers"
#: Seconds between takeovers of events a dead reader left unacknowledged.
CLAIM_EVERY_SECONDS = 30.0
#: Job hashes read by one call of the ``ledger_jobs`` script; the reader decodes one call's
#: reply between two yields to the event loop (well under 1 ms), so that a batch read beside a
#: worker does not hold up the jobs it runs.
READ_SLICE = 200
#: Fields of a job hash the ledger reads: all that make its ``Job`` but the delivery's own.
LEDGER_FIELDS = tuple(name for name in JOB_FIELDS if name not in ("stream", "token"))
#: The C scanner behind ``json.loads``, without its per-call Python layers.
_scan = make_scanner(cast(Any, json.JSONDecoder()))  # typeshed: takes the decoder

#: One event as read from a ledger stream: queue, stream entry, job id, status.
type RawEvent = tuple[str, str, str, str]


def _loads(raw: str | None, default: Any) -> Any:
    """Decode JSON as the status hash readers do: ``default`` when empty, ``raw`` when invalid."""
    if raw is None or raw == "":
        return default
    try:
        value, end = _scan(raw, 0)
        if end == len(raw):
            return value
    except StopIteration:
        pass
    try:  # surrounding whitespace or invalid: json.loads decides
        return json.loads(raw)
    except ValueError:
        return raw


class StoredJob:
    """The fields of one job hash as read with a ledger batch (text; absent fields left out).

    The ``Job`` and the decoded metadata are built on first use, once per job however many of
    its events the batch has: most batches only need the ledger row, not a ``Job``.
    """

    __slots__ = ("_job", "_metadata", "fields")

    def __init__(self, fields: dict[str, str]) -> None:
        #: Field name -> value, as in the hash.
        self.fields = fields
        self._job: Job | None = None
        self._metadata: dict[str, Any] | None = None

    @property
    def job(self) -> Job:
        """Return the job as stored (built once)."""
        if self._job is None:
            self._job = job_from_hash(self.fields)
        return self._job

    def decoded(self, name: str, default: Any) -> Any:
        """Return field ``name`` decoded from JSON: ``default`` when empty, the text if invalid."""
        return _loads(self.fields.get(name), default)

    @property
    def metadata(self) -> dict[str, Any]:
        """Return the job's metadata, decoded once ({} when not a JSON object)."""
        if self._metadata is None:
            metadata = self.decoded("metadata", {})
            self._metadata = metadata if isinstance(metadata, dict) else {}
        return self._metadata


class LedgerEvent(NamedTuple):
    """One job event: the job's hash as read with its batch (None once the hash expired)."""

    queue: str
    entry: str
    job_id: str
    status: str
    stored: StoredJob | None

    @property
    def job(self) -> Job | None:
        """Return the job as stored now (None once its hash expired)."""
        return None if self.stored is None else self.stored.job


class LedgerReader:
    """Read job events in batches, with the jobs' current data, and acknowledge them when stored.

    Events stay in the stream until ``ack``: a reader that dies, or a database that is down,
    delays the ledger but loses no event (another reader takes them over after ``claim_idle_ms``).
    """

    def __init__(self, redis_client: Any, consumer_name: str, config: QueueConfig):
        self._redis = redis_client
        self.consumer_name = consumer_name
        self.config = config
        self.keys = Keys(self.config.key_prefix, self.config.cluster_keys)
        self._tracker = JobStatusTracker(redis_client, self.config)
        self._grouped: set[str] = set()
        self._own_backlog = True
        self._last_claim = 0.0

    @translate_errors
    async def read(
        self, count: int = 500, block_ms: int = 1000, queue_names: Sequence[str] | None = None
    ) -> list[LedgerEvent]:
        """Return up to ``count`` events: this reader's unacknowledged ones first, then new ones."""
        queues = list(queue_names or await self._tracker.queue_names())
        await self._ensure_groups(queues)
        raw = await self._claim_stale(queues, count)
        if not raw:
            raw = await self._read(queues, count, "0" if self._own_backlog else ">", None)
            self._own_backlog = bool(raw)
        if not raw:
            raw = await self._read(queues, count, ">", block_ms)
        return await self._with_jobs(raw)

    def rewind(self) -> None:
        """Read this reader's unacknowledged events again (after a failed store)."""
        self._own_backlog = True

    @translate_errors
    async def ack(self, events: Sequence[LedgerEvent]) -> None:
        """Acknowledge and delete stored events: one XACK and one XDEL per stream."""
        if not events:
            return
        entries: dict[str, dict[str, None]] = {}  # an entry can hold the events of 20 jobs
        for event in events:
            entries.setdefault(self.keys.ledger(event.queue), {})[event.entry] = None
        async with self._redis.pipeline(transaction=False) as pipe:
            for stream, ids in entries.items():
                pipe.xack(stream, LEDGER_GROUP, *ids)
                pipe.xdel(stream, *ids)
            await pipe.execute()

    @translate_errors
    async def backlog(self, queue_names: Sequence[str] | None = None) -> int:
        """Return how many entries wait in the ledger streams (unread or unacknowledged).

        An entry holds one job's event, or those of up to 20 jobs of one script call.
        """
        queues = list(queue_names or await self._tracker.queue_names())
        async with self._redis.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.xlen(self.keys.ledger(queue))
            return sum(int(n) for n in await pipe.execute())

    async def _ensure_groups(self, queues: list[str]) -> None:
        for queue in queues:
            if queue in self._grouped:
                continue
            try:
                await self._redis.xgroup_create(
                    self.keys.ledger(queue), LEDGER_GROUP, id="0", mkstream=True
                )
            except ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise
            self._grouped.add(queue)

    async def _read(
        self, queues: list[str], count: int, start: str, block_ms: int | None
    ) -> list[RawEvent]:
        """Read the ledger streams; on a cluster, one read per slot, all at once."""
        by_stream = {self.keys.ledger(queue): queue for queue in queues}
        groups = self.keys.by_slot(by_stream)
        replies = await asyncio.gather(
            *(self._read_slot(streams, count, start, block_ms) for streams in groups)
        )
        out = []
        for reply in replies:
            items = reply.items() if isinstance(reply, dict) else (reply or [])
            for stream, messages in items:
                entries = messages[0] if isinstance(reply, dict) else messages
                out += _raw_events(by_stream[text(stream)], entries)
        return out

    async def _read_slot(
        self, streams: list[str], count: int, start: str, block_ms: int | None
    ) -> Any:
        try:
            return await self._redis.xreadgroup(
                LEDGER_GROUP,
                self.consumer_name,
                dict.fromkeys(streams, start),
                count=count,
                block=block_ms,
            )
        except ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            self._grouped.clear()
            return []

    async def _claim_stale(self, queues: list[str], count: int) -> list[RawEvent]:
        if time.monotonic() - self._last_claim < CLAIM_EVERY_SECONDS:
            return []
        self._last_claim = time.monotonic()
        out = []
        for queue in queues:
            _, messages, *_ = await self._redis.xautoclaim(
                self.keys.ledger(queue),
                LEDGER_GROUP,
                self.consumer_name,
                self.config.claim_idle_ms,
                "0-0",
                count=count,
            )
            out += _raw_events(queue, messages)
        return out

    async def _with_jobs(self, raw: list[RawEvent]) -> list[LedgerEvent]:
        """Attach each job's current hash, read once per job however many events it has."""
        jobs: dict[tuple[str, str], StoredJob | None] = dict.fromkeys((q, j) for q, _, j, _ in raw)
        by_queue: dict[str, list[str]] = {}
        for queue, job_id in jobs:
            by_queue.setdefault(queue, []).append(job_id)
        calls = [
            (queue, ids[start : start + READ_SLICE])
            for queue, ids in by_queue.items()
            for start in range(0, len(ids), READ_SLICE)
        ]
        for (queue, ids), reply in zip(calls, await self._read_jobs(calls), strict=True):
            for job_id, values in zip(ids, reply, strict=True):
                jobs[queue, job_id] = _stored(values)
            await asyncio.sleep(0)
        return [LedgerEvent(q, entry, j, status, jobs[q, j]) for q, entry, j, status in raw]

    async def _read_jobs(self, calls: list[tuple[str, list[str]]]) -> list[Any]:
        """Return the ``LEDGER_FIELDS`` of the jobs of each ``(queue, ids)``, one call each."""
        script = SCRIPTS["ledger_jobs"]
        runs = []
        for queue, ids in calls:
            keys = self.keys.script_keys("ledger_jobs", queue)
            keys += [self.keys.job(job_id, queue) for job_id in ids]
            settings = self.keys.script_settings(queue, self.config.job_ttl_seconds, "", 0, 0)
            runs.append((keys, [settings, *LEDGER_FIELDS]))
        replies = await script.run_many(self._redis, runs) if runs else []
        if any(lost(reply) for reply in replies):
            await load(self._redis)
            replies = await script.run_many(self._redis, runs)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies


def _raw_events(queue: str, messages: Any) -> list[RawEvent]:
    """Return the events of stream ``messages`` (``[(entry, fields), ...]``) of ``queue``.

    An entry names one job (field ``job_id``) or, written by a call of several jobs, up to 20
    (``job_ids``, a JSON array): one event each, all with the entry's id and status.
    """
    out = []
    for entry, fields in messages:
        data = {text(key): value for key, value in (fields or {}).items()}
        status, entry_id = text(data.get("status") or ""), text(entry)
        for job_id in _job_ids(data):
            out.append((queue, entry_id, job_id, status))
    return out


def _job_ids(data: dict[str, Any]) -> list[str]:
    """Return the job ids one ledger entry names (``[""]`` when it names none readably)."""
    if "job_ids" not in data:
        job_id = data.get("job_id")
        return ["" if job_id is None else text(job_id)]
    ids = _loads(text(data["job_ids"]), None)
    if isinstance(ids, list) and ids and all(type(job_id) is str for job_id in ids):
        return ids
    return [""]


def _stored(values: list[Any]) -> StoredJob | None:
    """Return a job hash from its ``LEDGER_FIELDS`` values (None when it expired)."""
    fields = {
        name: value if type(value) is str else text(value)
        for name, value in zip(LEDGER_FIELDS, values, strict=True)
        if value is not None
    }
    return StoredJob(fields) if fields else None
