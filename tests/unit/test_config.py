"""QueueConfig defaults, ranges and environment parsing."""

from __future__ import annotations

import pytest

from queue_app.queue import QueueConfig, get_queue_config, reset_queue_config, set_queue_config
from queue_app.queue.redis.keys import Keys


def test_defaults_match_the_reference() -> None:
    config = QueueConfig()
    assert (config.redis_url, config.key_prefix, config.consumer_group) == (
        "redis://localhost:6379",
        "aragora:queue:",
        "debate-workers",
    )
    assert (config.retry_max_attempts, config.retry_base_delay, config.retry_max_delay) == (
        3,
        1.0,
        300.0,
    )
    assert (config.claim_idle_ms, config.max_job_ttl_days, config.worker_block_ms) == (
        60000,
        7,
        5000,
    )


@pytest.mark.parametrize(
    ("field", "low", "high"),
    [
        ("max_job_ttl_days", 1, 30),
        ("claim_idle_ms", 10_000, 600_000),
        ("retry_max_attempts", 1, 10),
        ("retry_base_delay", 0.1, 60.0),
        ("retry_max_delay", 1.0, 3600.0),
        ("worker_block_ms", 1000, 30_000),
    ],
)
def test_range_limits_are_inclusive_and_enforced(field: str, low: float, high: float) -> None:
    QueueConfig(**{field: low})
    QueueConfig(**{field: high})
    for bad in (low - (1 if isinstance(low, int) else 0.01), high + 1):
        with pytest.raises(ValueError, match=field):
            QueueConfig(**{field: bad})


def test_config_is_frozen() -> None:
    with pytest.raises(AttributeError):
        QueueConfig().claim_idle_ms = 1  # type: ignore[misc]


def test_from_env_reads_every_variable() -> None:
    env = {
        "REDIS_URL": "redis://example:6380/2",
        "ARAGORA_QUEUE_PREFIX": "x:",
        "ARAGORA_QUEUE_RETRY_MAX": "5",
        "ARAGORA_QUEUE_RETRY_BASE_DELAY": "0.5",
        "ARAGORA_QUEUE_RETRY_MAX_DELAY": "60",
        "ARAGORA_QUEUE_CLAIM_IDLE_MS": "30000",
        "ARAGORA_QUEUE_MAX_TTL_DAYS": "3",
        "ARAGORA_QUEUE_WORKER_BLOCK_MS": "2000",
        "ARAGORA_QUEUE_CONSUMER_GROUP": "g",
    }
    config = QueueConfig.from_env(env)
    assert config == QueueConfig(
        redis_url="redis://example:6380/2",
        key_prefix="x:",
        retry_max_attempts=5,
        retry_base_delay=0.5,
        retry_max_delay=60.0,
        claim_idle_ms=30000,
        max_job_ttl_days=3,
        worker_block_ms=2000,
        consumer_group="g",
    )


def test_from_env_names_the_malformed_variable() -> None:
    with pytest.raises(ValueError, match="ARAGORA_QUEUE_CLAIM_IDLE_MS must be an integer"):
        QueueConfig.from_env({"ARAGORA_QUEUE_CLAIM_IDLE_MS": "soon"})
    with pytest.raises(ValueError, match="ARAGORA_QUEUE_CLAIM_IDLE_MS must be between"):
        QueueConfig.from_env({"ARAGORA_QUEUE_CLAIM_IDLE_MS": "5"})


def test_get_and_set_queue_config(monkeypatch: pytest.MonkeyPatch) -> None:
    custom = QueueConfig(key_prefix="custom:")
    set_queue_config(custom)
    try:
        assert get_queue_config() is custom
        set_queue_config(None)
        monkeypatch.setenv("ARAGORA_QUEUE_PREFIX", "from-env:")
        assert get_queue_config().key_prefix == "from-env:"
    finally:
        set_queue_config(None)


@pytest.mark.parametrize("cluster", [False, True])
def test_reference_key_properties_match_the_key_schema(cluster: bool) -> None:
    config = QueueConfig(key_prefix="p:", cluster_keys=cluster)
    keys = Keys("p:", cluster)
    assert config.stream_key == keys.stream("debates")
    assert keys.job("j-1", "debates") == f"{config.status_key_prefix}j-1"
    assert config.job_ttl_seconds == 7 * 86_400


def test_reset_queue_config_reads_the_environment_again(monkeypatch: pytest.MonkeyPatch) -> None:
    set_queue_config(QueueConfig(key_prefix="custom:"))
    monkeypatch.setenv("ARAGORA_QUEUE_PREFIX", "again:")
    reset_queue_config()
    try:
        assert get_queue_config().key_prefix == "again:"
    finally:
        reset_queue_config()
