"""``redis+sentinel://`` URLs as ``client_from_url`` reads them, and the replica settings."""

from __future__ import annotations

import pytest

from queue_app.queue import ConfigError, QueueConfig
from queue_app.queue.redis.sentinel import SentinelURL, parse_sentinel_url


def test_sentinel_url_names_sentinels_master_database_and_login() -> None:
    url = "redis+sentinel://ops:p%40ss@10.0.0.1:26380,sentinel-b,[::1]:26381/aragora/3"
    assert parse_sentinel_url(url) == SentinelURL(
        sentinels=(("10.0.0.1", 26380), ("sentinel-b", 26379), ("::1", 26381)),
        master="aragora",
        db=3,
        username="ops",
        password="p@ss",
    )


def test_sentinel_url_defaults_to_database_0_without_login() -> None:
    parsed = parse_sentinel_url("redis+sentinel://:secret@127.0.0.1:26379/mymaster")
    assert (parsed.master, parsed.db, parsed.username, parsed.password) == (
        "mymaster",
        0,
        None,
        "secret",
    )


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://127.0.0.1:26379",  # no master name
        "redis+sentinel://127.0.0.1:26379/",
        "redis+sentinel:///aragora",  # no sentinel
        "redis+sentinel://127.0.0.1:port/aragora",
        "redis+sentinel://127.0.0.1:70000/aragora",
        "redis+sentinel://127.0.0.1:26379,/aragora",
        "redis+sentinel://127.0.0.1:26379/aragora/db",
        "redis+sentinel://127.0.0.1:26379/aragora/0/more",
        "redis+sentinel://127.0.0.1:26379/aragora?ssl=true",
    ],
)
def test_malformed_sentinel_url_is_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(ConfigError, match="a Sentinel URL is redis\\+sentinel://") as refused:
        parse_sentinel_url(url)
    assert "127.0.0.1" not in str(refused.value)


def test_replica_confirmations_are_checked() -> None:
    config = QueueConfig.from_env(
        {"ARAGORA_QUEUE_ENQUEUE_REPLICAS": "2", "ARAGORA_QUEUE_ENQUEUE_WAIT_MS": "250"}
    )
    assert (config.enqueue_replicas, config.enqueue_wait_ms) == (2, 250)
    assert (QueueConfig().enqueue_replicas, QueueConfig().enqueue_wait_ms) == (0, 100)
    with pytest.raises(ConfigError, match="ARAGORA_QUEUE_ENQUEUE_REPLICAS must be between"):
        QueueConfig.from_env({"ARAGORA_QUEUE_ENQUEUE_REPLICAS": "-1"})
    with pytest.raises(ConfigError, match="ARAGORA_QUEUE_ENQUEUE_WAIT_MS must be between"):
        QueueConfig.from_env({"ARAGORA_QUEUE_ENQUEUE_WAIT_MS": "0"})
    with pytest.raises(ConfigError, match="enqueue_replicas must be an integer"):
        QueueConfig(enqueue_replicas=1.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="shorter than socket_timeout"):
        QueueConfig(enqueue_wait_ms=5000, socket_timeout=5.0)
