"""QueueConfig: the queue's settings, range-checked once and then frozen."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .errors import ConfigError

#: Valid ranges of the numeric fields, as documented by the reference.
RANGES: dict[str, tuple[float, float]] = {
    "max_job_ttl_days": (1, 30),
    "claim_idle_ms": (10_000, 600_000),
    "retry_max_attempts": (1, 10),
    "retry_base_delay": (0.1, 60.0),
    "retry_max_delay": (1.0, 3600.0),
    "worker_block_ms": (1000, 30_000),
    "socket_timeout": (1.0, 300.0),
    "connect_timeout": (0.1, 60.0),
    "health_check_interval": (0, 3600),
    "debate_max_rounds": (1, 1000),
    "debate_max_agents": (1, 100),
    "debate_max_question_chars": (1, 1_000_000),
    "debate_timeout_seconds": (1, 86_400),
    "enqueue_replicas": (0, 100),
    "enqueue_wait_ms": (1, 60_000),
}

#: Environment variable for each field.
ENV_VARS: dict[str, str] = {
    "redis_url": "REDIS_URL",
    "key_prefix": "ARAGORA_QUEUE_PREFIX",
    "retry_max_attempts": "ARAGORA_QUEUE_RETRY_MAX",
    "retry_base_delay": "ARAGORA_QUEUE_RETRY_BASE_DELAY",
    "retry_max_delay": "ARAGORA_QUEUE_RETRY_MAX_DELAY",
    "claim_idle_ms": "ARAGORA_QUEUE_CLAIM_IDLE_MS",
    "max_job_ttl_days": "ARAGORA_QUEUE_MAX_TTL_DAYS",
    "worker_block_ms": "ARAGORA_QUEUE_WORKER_BLOCK_MS",
    "consumer_group": "ARAGORA_QUEUE_CONSUMER_GROUP",
    "cluster_keys": "ARAGORA_QUEUE_CLUSTER_KEYS",
    "ledger_max_len": "ARAGORA_QUEUE_LEDGER_MAXLEN",
    "socket_timeout": "ARAGORA_QUEUE_SOCKET_TIMEOUT",
    "connect_timeout": "ARAGORA_QUEUE_CONNECT_TIMEOUT",
    "health_check_interval": "ARAGORA_QUEUE_HEALTH_CHECK_INTERVAL",
    "debate_max_rounds": "ARAGORA_DEBATE_MAX_ROUNDS",
    "debate_max_agents": "ARAGORA_DEBATE_MAX_AGENTS",
    "debate_max_question_chars": "ARAGORA_DEBATE_MAX_QUESTION_CHARS",
    "debate_timeout_seconds": "ARAGORA_DEBATE_TIMEOUT_SECONDS",
    "max_depth": "ARAGORA_QUEUE_MAX_DEPTH",
    "enqueue_replicas": "ARAGORA_QUEUE_ENQUEUE_REPLICAS",
    "enqueue_wait_ms": "ARAGORA_QUEUE_ENQUEUE_WAIT_MS",
    "webhook_secret_keys": "ARAGORA_WEBHOOK_SECRET_KEYS",
    "webhook_allow_private": "ARAGORA_WEBHOOK_ALLOW_PRIVATE",
}
#: URL schemes of a Redis Cluster (``redis.connect``); such a URL turns ``cluster_keys`` on.
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
#: Valid queue names: 1-64 of A-Z a-z 0-9 _ . - (they become parts of Redis keys).
QUEUE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueConfig:
    """Settings of the queue library; invalid values raise ``ValueError`` naming the field."""

    redis_url: str = "redis://localhost:6379"
    #: Prefix of every Redis key.
    key_prefix: str = "aragora:queue:"
    retry_max_attempts: int = 3
    retry_base_delay: float = 1.0
    retry_max_delay: float = 300.0
    #: Deliveries idle longer than this are taken over by other workers.
    claim_idle_ms: int = 60_000
    #: How long job status hashes live once the job is terminal.
    max_job_ttl_days: int = 7
    #: XREADGROUP BLOCK time of workers.
    worker_block_ms: int = 5000
    consumer_group: str = "debate-workers"
    #: Hash-tag every queue key (``aragora:queue:{debates}:stream``) for Redis Cluster; always
    #: on with a ``redis+cluster://`` URL.
    cluster_keys: bool = False
    #: Queue used when a call names none.
    default_queue: str = "debates"
    #: Approximate cap of each queue's ledger event stream, in entries (an entry holds one job's
    #: event, or those of up to 20 jobs of one script call); 0 turns the ledger feed off.
    ledger_max_len: int = 1_000_000
    #: Seconds a Redis reply may take (above the longest blocking read, which is 0.5 s).
    socket_timeout: float = 10.0
    #: Seconds to open a Redis connection.
    connect_timeout: float = 5.0
    #: Seconds of idleness after which a pooled connection is checked (PING) before use; 0: never.
    health_check_interval: int = 30
    #: Bounds of a debate job: rounds, agents, question length, and the timeout of a debate
    #: whose payload sets none.
    debate_max_rounds: int = 20
    debate_max_agents: int = 10
    debate_max_question_chars: int = 10_000
    debate_timeout_seconds: int = 1800
    #: Declared queues: enqueueing to any other raises ``UndeclaredQueue``. None (the library's
    #: default, without Django) accepts every valid name; the Django layer always declares them.
    queues: frozenset[str] | None = None
    #: Most waiting jobs (pending, delayed, retrying) a queue may hold; None: no limit.
    max_depth: int | None = None
    #: Per-queue limits that replace ``max_depth`` for the queues named.
    max_depths: Mapping[str, int] = dataclasses.field(default_factory=dict, hash=False)
    #: Retention of terminal jobs in seconds, replacing ``max_job_ttl_days`` (tests, benchmarks:
    #: no environment variable sets it).
    retention_seconds: int | None = None
    #: Fernet keys of webhook signing secrets at rest (url-safe base64 of 32 bytes each): the
    #: first encrypts, every one decrypts, so a new key goes first and old ones follow it.
    webhook_secret_keys: tuple[str, ...] = field(default=(), repr=False)
    #: Let webhooks go to private, loopback and link-local addresses (development, tests).
    webhook_allow_private: bool = False
    #: Replicas that must confirm an enqueue (``WAIT``) before it is acknowledged; 0: none.
    enqueue_replicas: int = 0
    #: Longest wait for those confirmations, ms (below ``socket_timeout``); then
    #: ``EnqueueNotReplicated``.
    enqueue_wait_ms: int = 100

    def __post_init__(self) -> None:
        for name, (low, high) in RANGES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{name} must be a number, got {value!r}")
            if not low <= value <= high:
                raise ConfigError(f"{name} must be between {low} and {high}, got {value!r}")
        if isinstance(self.ledger_max_len, bool) or not isinstance(self.ledger_max_len, int):
            raise ConfigError(f"ledger_max_len must be an integer, got {self.ledger_max_len!r}")
        if self.ledger_max_len < 0:
            raise ConfigError(f"ledger_max_len must not be negative, got {self.ledger_max_len}")
        for name in ("redis_url", "key_prefix", "consumer_group", "default_queue"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ConfigError(f"{name} must be a non-empty string")
        if is_cluster_url(self.redis_url):
            object.__setattr__(self, "cluster_keys", True)
        _check_queues_and_limits(self)
        _check_enqueue_wait(self)
        _check_fernet_keys(self.webhook_secret_keys)

    @property
    def job_ttl_seconds(self) -> int:
        """Return the TTL of terminal job keys in seconds."""
        if self.retention_seconds is not None:
            return self.retention_seconds
        return int(self.max_job_ttl_days * 86_400)

    def declares(self, queue: str) -> bool:
        """Tell whether jobs may be enqueued on ``queue``."""
        return self.queues is None or queue in self.queues

    def depth_limit(self, queue: str) -> int | None:
        """Return the most waiting jobs ``queue`` may hold, or None when unlimited."""
        return self.max_depths.get(queue, self.max_depth)

    @property
    def stream_key(self) -> str:
        """Return the stream of the default queue at normal priority (as ``redis.keys`` names it).

        Written out here because the library's plain modules never import the Redis room; a
        test holds it equal to ``Keys.stream``.
        """
        return f"{self._queue_base(self.default_queue)}stream"

    @property
    def status_key_prefix(self) -> str:
        """Return the prefix of the default queue's job status hashes (``job:`` + id follows)."""
        if self.cluster_keys:
            return f"{self._queue_base(self.default_queue)}job:"
        return f"{self.key_prefix}job:"

    def _queue_base(self, queue: str) -> str:
        return (
            f"{self.key_prefix}{{{queue}}}:" if self.cluster_keys else f"{self.key_prefix}{queue}:"
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> QueueConfig:
        """Build a config from ``REDIS_URL`` and the ``ARAGORA_QUEUE_*`` variables."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for entry in fields(cls):
            var = ENV_VARS.get(entry.name)
            raw = env.get(var) if var else None
            if raw is None or raw.strip() == "":
                continue
            values[entry.name] = _convert(entry.name, var or entry.name, raw.strip())
        try:
            return cls(**values)
        except ConfigError as error:  # name the variable, not the field
            name, _, rest = str(error).partition(" ")
            raise ConfigError(f"{ENV_VARS.get(name, name)} {rest}") from None


def _check_enqueue_wait(config: QueueConfig) -> None:
    """Refuse a fractional replica count, or a WAIT the client would time out before."""
    for name in ("enqueue_replicas", "enqueue_wait_ms"):
        if not isinstance(getattr(config, name), int):
            raise ConfigError(f"{name} must be an integer, got {getattr(config, name)!r}")
    if config.enqueue_replicas and is_cluster_url(config.redis_url):
        raise ConfigError(
            "enqueue_replicas needs one server's connection for WAIT: not with a cluster URL"
        )
    if config.enqueue_wait_ms >= config.socket_timeout * 1000:
        raise ConfigError(
            f"enqueue_wait_ms must be shorter than socket_timeout ({config.socket_timeout} s), "
            f"got {config.enqueue_wait_ms}"
        )


def _check_fernet_keys(keys: object) -> None:
    """Refuse anything but a tuple of Fernet keys (the keys themselves are never echoed)."""
    if not isinstance(keys, tuple):
        raise ConfigError("webhook_secret_keys must be a tuple of Fernet keys")
    for number, key in enumerate(keys, start=1):
        try:
            raw = base64.urlsafe_b64decode(key.encode("ascii")) if isinstance(key, str) else b""
        except (binascii.Error, UnicodeEncodeError):
            raw = b""
        if len(raw) != 32:
            raise ConfigError(
                f"webhook_secret_keys key {number} is not a Fernet key (32 bytes, url-safe base64)"
            )


def _key_list(raw: str) -> tuple[str, ...]:
    return tuple(key.strip() for key in raw.split(",") if key.strip())


INTEGER = re.compile(r"-?[0-9]+")
NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def _to_int(raw: str) -> int:
    """Parse a plain integer (no ``_`` separators, no sign tricks beyond a leading ``-``)."""
    if not INTEGER.fullmatch(raw):
        raise ValueError(raw)
    return int(raw)


def _to_float(raw: str) -> float:
    """Parse a plain decimal number (``1``, ``0.5``; not ``1_0``, ``1e3``, ``nan`` or ``inf``)."""
    if not NUMBER.fullmatch(raw):
        raise ValueError(raw)
    return float(raw)


def is_cluster_url(url: str) -> bool:
    """Tell whether ``url`` names a Redis Cluster (``redis+cluster://``, ``rediss+cluster://``)."""
    return url.partition("://")[0].lower() in CLUSTER_SCHEMES


def valid_queue_name(name: object) -> bool:
    """Tell whether ``name`` can be a queue name."""
    return isinstance(name, str) and QUEUE_NAME.fullmatch(name) is not None


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def _check_queues_and_limits(config: QueueConfig) -> None:
    """Check the declared queues, the depth limits and the retention override; freeze them."""
    if config.queues is not None:
        queues = frozenset(config.queues)
        bad = sorted(name for name in queues if not valid_queue_name(name))
        if bad:
            raise ConfigError(f"queues: invalid queue names {bad!r}")
        if config.default_queue not in queues:
            raise ConfigError(f"queues must include the default queue {config.default_queue!r}")
        object.__setattr__(config, "queues", queues)
    if config.max_depth is not None:
        _positive_int("max_depth", config.max_depth)
    if config.retention_seconds is not None:
        _positive_int("retention_seconds", config.retention_seconds)
    for queue, limit in config.max_depths.items():
        if not config.declares(queue) or not valid_queue_name(queue):
            raise ConfigError(f"max_depths names a queue that is not declared: {queue!r}")
        _positive_int(f"max_depths[{queue!r}]", limit)
    object.__setattr__(config, "max_depths", dict(config.max_depths))


def _to_bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(raw)


_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "retry_max_attempts": _to_int,
    "claim_idle_ms": _to_int,
    "max_job_ttl_days": _to_int,
    "worker_block_ms": _to_int,
    "retry_base_delay": _to_float,
    "retry_max_delay": _to_float,
    "cluster_keys": _to_bool,
    "ledger_max_len": _to_int,
    "socket_timeout": _to_float,
    "connect_timeout": _to_float,
    "health_check_interval": _to_int,
    "debate_max_rounds": _to_int,
    "debate_max_agents": _to_int,
    "debate_max_question_chars": _to_int,
    "debate_timeout_seconds": _to_int,
    "max_depth": _to_int,
    "enqueue_replicas": _to_int,
    "enqueue_wait_ms": _to_int,
    "webhook_secret_keys": _key_list,
    "webhook_allow_private": _to_bool,
}


def _convert(name: str, var: str, raw: str) -> Any:
    converter = _CONVERTERS.get(name, str)
    try:
        return converter(raw)
    except ValueError:
        kinds: dict[Callable[[str], Any], str] = {
            _to_int: "an integer",
            _to_float: "a number",
            _to_bool: "true or false",
        }
        raise ConfigError(f"{var} must be {kinds[converter]}, got {raw!r}") from None


_config: QueueConfig | None = None


def get_queue_config() -> QueueConfig:
    """Return the process-wide config, read from the environment on first use."""
    global _config
    if _config is None:
        _config = QueueConfig.from_env()
    return _config


def set_queue_config(config: QueueConfig | None) -> None:
    """Replace the process-wide config (None: read the environment again on next use)."""
    global _config
    _config = config


def reset_queue_config() -> None:
    """Forget the process-wide config: the next ``get_queue_config()`` reads the environment."""
    set_queue_config(None)
