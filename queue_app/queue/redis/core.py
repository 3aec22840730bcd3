"""Shared core of RedisStreamsQueue: client, config, key schema, script calls, helpers."""

from __future__ import annotations

import asyncio
import os
import socket
from _json import make_encoder
from collections import Counter
from collections.abc import Callable, Sequence
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any, NamedTuple

from ..config import QueueConfig, valid_queue_name
from ..errors import InvalidJob, UndeclaredQueue
from ..retry import RetryPolicy
from ..tracing import in_span
from .keys import Keys
from .lane import Lane
from .scripts import SCRIPTS, Call
from .status import JobStatusTracker, text

#: Dead-letter entries kept per queue.
DEAD_LETTER_MAX = 10_000


class Delivery(NamedTuple):
    """One stream entry owned by this consumer; ``token`` is set once the job started."""

    queue: str
    level: str
    entry: str
    job_id: str
    token: str = ""
    attempts: int = 0
    max_attempts: int = 0


def check_queue_name(name: str) -> str:
    """Return ``name`` if it is a valid queue name, else raise ``InvalidJob``."""
    if not valid_queue_name(name):
        raise InvalidJob(f"invalid queue name {name!r}: use 1-64 of A-Z a-z 0-9 _ . -")
    return name


def compact_json(
    ensure_ascii: bool = True, separators: tuple[str, str] = (",", ":")
) -> Callable[[Any], str]:
    """Return ``json.JSONEncoder(separators=separators, ensure_ascii=...).encode``, made once.

    ``JSONEncoder.encode`` builds its C encoder (``_json.make_encoder``) on every call: half its
    cost for the small dicts of a job. This one is built once, without the check for circular
    references (its state would be shared): a circular value raises ``RecursionError``, as a
    too deeply nested one does anyway.
    """
    strings = encode_basestring_ascii if ensure_ascii else encode_basestring
    item, key = separators
    encoder = make_encoder(None, _unencodable, strings, None, key, item, False, False, True)
    return lambda value: "".join(encoder(value, 0))


def _unencodable(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


#: One encoder for every value.
_encode = compact_json()


def check_declared(config: QueueConfig, queue: str) -> None:
    """Raise ``InvalidJob`` unless ``queue`` is a valid name (``UndeclaredQueue``: and declared)."""
    check_queue_name(queue)
    if not config.declares(queue):
        declared = ", ".join(sorted(config.queues or ()))
        raise UndeclaredQueue(f"queue {queue!r} is not declared (declared: {declared})")


def dumps(value: Any, what: str) -> str:
    try:
        return _encode(value)
    except (TypeError, ValueError, RecursionError) as error:
        raise InvalidJob(f"{what} is not JSON-serialisable: {error}") from None


class QueueCore:
    """State shared by the queue's parts: client, config, keys, scripts and owned deliveries."""

    def __init__(self, redis_client: Any, consumer_name: str, config: QueueConfig):
        self._redis = redis_client
        self.consumer_name = consumer_name
        self.config = config
        self.keys = Keys(self.config.key_prefix, self.config.cluster_keys)
        self.tracker = JobStatusTracker(redis_client, self.config)
        self.retry_policy = RetryPolicy(
            max_attempts=self.config.retry_max_attempts,
            base_delay_seconds=self.config.retry_base_delay,
            max_delay_seconds=self.config.retry_max_delay,
        )
        self.owns_client = False
        #: The connections that enqueue one by one, take jobs and write outcomes (``lane.py``),
        #: each taken from the pool on first use; None on a cluster.
        self.enqueue_lane = Lane.of(redis_client)
        self.take_lane = Lane.of(redis_client)
        self.finish_lane = Lane.of(redis_client)
        self._known_queues: set[str] = set()
        self._script_settings: dict[str, bytes] = {}
        self._script_keys: dict[tuple[str, str], list[bytes]] = {}
        #: Blocking reads of a cluster's slots still waiting, by the streams they read.
        self._slot_reads: dict[frozenset[str], asyncio.Future[None]] = {}
        self._owned: list[Delivery] = []
        self._running: dict[str, Delivery] = {}
        self._next_due_ms: dict[str, int] = {}
        #: Per queue, the group's last-delivered id of each level (flat) when a take started none.
        self._cursors: dict[str, list[str]] = {}
        self._woken = False
        #: The queues whose last take started fewer jobs than asked (their streams ran dry):
        #: the next take of the same queues waits for new entries at once (blocking read and
        #: take in one round trip, with the cursors of that take) instead of taking first.
        self._drained: tuple[str, ...] = ()
        #: A take or start failed on the connection: Redis may have started jobs for this
        #: consumer whose reply never came (``QueueConsumer._take_back_orphans``); the take
        #: lane's failed round trips when last looked at.
        self._replies_lost = False
        self._lane_failures_seen = 0
        #: Entries dead-lettered while reading (undecodable, expired, poison pills), by queue.
        self.dead_lettered: Counter[str] = Counter()

    @property
    def stream_key(self) -> str:
        """Return the stream of the default queue at normal priority."""
        return self.keys.stream(self.config.default_queue)

    @property
    def group_name(self) -> str:
        """Return the consumer group name."""
        return self.config.consumer_group

    @property
    def redis(self) -> Any:
        """Return the Redis client."""
        return self._redis

    @property
    def running(self) -> dict[str, Delivery]:
        """Return the deliveries this consumer started and has not finished, by job id."""
        return self._running

    def _settings(self, queue: str) -> bytes:
        """Return ARGV[1] of the scripts of ``queue`` (``Keys.script_settings``), made once.

        Kept encoded, like ``script_keys``: redis-py sends bytes as they are, and the scripts of
        the hot paths (take, finish) are called for every batch.
        """
        settings = self._script_settings.get(queue)
        if settings is None:
            settings = self._script_settings[queue] = self.keys.script_settings(
                queue,
                self.config.job_ttl_seconds,
                self.group_name,
                DEAD_LETTER_MAX,
                self.config.ledger_max_len,
            ).encode()
        return settings

    def script_keys(self, script: str, queue: str) -> list[bytes]:
        """Return the keys of ``queue`` that ``script`` receives first, encoded, made once."""
        keys = self._script_keys.get((script, queue))
        if keys is None:
            names = self.keys.script_keys(script, queue)
            keys = self._script_keys[script, queue] = [name.encode() for name in names]
        return keys

    def script_call(
        self, script: str, queue: str, args: Sequence[Any], keys: Sequence[str] = ()
    ) -> Call:
        """Return the KEYS and ARGV of a call of ``script`` on ``queue``.

        ``keys`` are the per-job keys the script reads after its queue's (job hashes...).
        """
        return [*self.script_keys(script, queue), *keys], [self._settings(queue), *args]

    async def _run(
        self,
        name: str,
        queue: str,
        args: Sequence[Any],
        keys: Sequence[str] = (),
        lane: Lane | None = None,
    ) -> Any:
        call = self.script_call(name, queue, args, keys)
        return await SCRIPTS[name](self._caller(lane), *call)

    def _caller(self, lane: Lane | None) -> Any:
        """Return ``lane`` outside a span, else the client (its commands become the span's
        children in the Redis instrumentation; a lane's do not)."""
        return lane if lane is not None and not in_span() else self._redis

    @property
    def lanes(self) -> list[Lane]:
        """Return the lanes of this queue (none on a cluster)."""
        lanes = (self.enqueue_lane, self.take_lane, self.finish_lane)
        return [lane for lane in lanes if lane is not None]

    # -- queues and groups ------------------------------------------------------------------

    async def ensure_queue(self, queue: str) -> None:
        """Create the group on the queue's priority-0 stream and register the queue name.

        Streams of other priorities get their group from the script that creates them.

        Raises:
            InvalidJob: not a valid queue name (``UndeclaredQueue``: not a declared one).
        """
        if queue in self._known_queues:
            return
        check_declared(self.config, queue)
        async with self._redis.pipeline(transaction=False) as pipe:
            self.queue_setup(pipe, queue)
            check_setup(await pipe.execute(raise_on_error=False))
        self._known_queues.add(queue)

    def queue_setup(self, pipe: Any, queue: str) -> None:
        """Add to a pipeline (sync or async) the commands that create ``queue``'s group."""
        pipe.xgroup_create(self.keys.stream(queue), self.group_name, id="0", mkstream=True)
        pipe.zadd(self.keys.levels(queue), {"0": 0}, nx=True)
        pipe.sadd(self.keys.queues(), queue)

    def _queue(self, queue_name: str | None) -> str:
        return queue_name or self.config.default_queue

    async def levels(self, queues: Sequence[str]) -> dict[str, list[str]]:
        """Return the priorities in use of each queue (each has a stream), highest first."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.zrevrangebyscore(self.keys.levels(queue), "+inf", "-inf")
            replies = await pipe.execute()
        return {
            queue: [text(level) for level in reply] or ["0"]
            for queue, reply in zip(queues, replies, strict=True)
        }


def check_setup(replies: Sequence[Any]) -> None:
    """Raise the first error of ``queue_setup``'s replies other than "the group exists"."""
    for reply in replies:
        if isinstance(reply, Exception) and "BUSYGROUP" not in str(reply):
            raise reply


def to_delay_ms(delay_seconds: float) -> int:
    if delay_seconds < 0:
        raise InvalidJob("delay_seconds must not be negative")
    return round(delay_seconds * 1000)


def default_consumer_name() -> str:
    """Return ``<host>-<pid>``, the default consumer and worker id."""
    return f"{socket.gethostname()}-{os.getpid()}"
