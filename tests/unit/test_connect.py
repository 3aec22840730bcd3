"""Redis URLs -> clients: one server, or a Redis Cluster from ``redis+cluster://`` (no I/O)."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from queue_app.queue import ConfigError, QueueConfig
from queue_app.queue.redis.connect import client_from_url


def test_client_from_url_builds_a_cluster_client_from_every_node_listed() -> None:
    client = client_from_url(
        "redis+cluster://user:p%40ss@10.0.0.1:7000,10.0.0.2:7001,[::1]:7002",
        decode_responses=True,
        retry_on_timeout=False,
    )
    assert isinstance(client, RedisCluster)
    nodes = [(node.host, node.port) for node in client.startup_nodes]
    assert nodes == [("10.0.0.1", 7000), ("10.0.0.2", 7001), ("::1", 7002)]
    kwargs = client.nodes_manager.connection_kwargs
    assert (kwargs["username"], kwargs["password"]) == ("user", "p@ss")
    assert kwargs["decode_responses"] is True


def test_client_from_url_keeps_single_servers_on_the_plain_client() -> None:
    assert type(client_from_url("redis://127.0.0.1:6390/2")) is Redis


@pytest.mark.parametrize("url", ["redis+cluster://", "redis+cluster://host", "redis+cluster://h:x"])
def test_client_from_url_refuses_a_cluster_url_without_nodes(url: str) -> None:
    with pytest.raises(ConfigError):
        client_from_url(url)


def test_a_cluster_url_turns_cluster_keys_on() -> None:
    assert QueueConfig(redis_url="redis+cluster://127.0.0.1:7000").cluster_keys is True
    assert QueueConfig(redis_url="rediss+cluster://127.0.0.1:7000").cluster_keys is True
    assert QueueConfig(redis_url="redis://127.0.0.1:7000").cluster_keys is False
