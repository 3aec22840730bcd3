"""Redis clients from a URL: the one place that builds them (library, workers, web, metrics).

- ``redis://[user:password@]host:port[/db]``, ``rediss://``, ``unix://``: one server (``Redis``).
- ``redis+cluster://[user:password@]host:port[,host:port...]`` (``rediss+cluster://`` over TLS):
  Redis Cluster.
- ``redis+sentinel://[[user]:password@]host:port[,host:port...]/<master-name>[/db]``: the master
  that the Sentinels name, followed across failovers (``sentinel.py``).

A cluster URL lists one or more nodes to start from; the client discovers the others and
follows the slots as they move. It implies the hash-tagged key schema (``cluster_keys``), so
that every key of a queue is on one slot. Timeouts and keepalive come from the options (see
``streams.client_options``), not from the URL.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio as aioredis
import redis.cluster
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection

from ..config import is_cluster_url
from ..errors import ConfigError
from .sentinel import SENTINEL_SCHEME, sentinel_client, sync_sentinel_client

#: Options of a single-server client that a cluster client does not take.
SINGLE_SERVER_ONLY = frozenset({"retry_on_timeout"})
#: Options of a TCP connection that a Unix socket connection does not take.
TCP_ONLY = frozenset({"socket_keepalive", "socket_keepalive_options"})

__all__ = ["client_from_url", "is_cluster_client", "is_cluster_url", "sync_client_from_url"]


def is_cluster_client(client: object) -> bool:
    """Tell whether ``client`` is a cluster client (cached per class: the hot paths ask)."""
    cls = type(client)
    known = _CLUSTER_CLASSES.get(cls)
    if known is None:
        # RedisCluster derives from a typing Protocol: isinstance() on it is slow, so ask once.
        known = _CLUSTER_CLASSES[cls] = issubclass(cls, RedisCluster | redis.cluster.RedisCluster)
    return known


#: Whether each client class seen is a cluster client.
_CLUSTER_CLASSES: dict[type, bool] = {}


def client_from_url(url: str, **options: Any) -> aioredis.Redis | RedisCluster:
    """Return an asyncio client for ``url``: a ``RedisCluster`` for a cluster URL, else ``Redis``.

    Raises:
        ConfigError: a cluster URL without any ``host:port``.
    """
    if url.startswith(f"{SENTINEL_SCHEME}:"):
        return _check_closed_sockets(sentinel_client(url, options))
    if not is_cluster_url(url):
        return _check_closed_sockets(aioredis.from_url(url, **_server_options(url, options)))
    return RedisCluster(**_cluster_options(url, options))


def sync_client_from_url(url: str, **options: Any) -> redis.Redis | redis.cluster.RedisCluster:
    """Return a sync client for ``url``, as ``client_from_url`` does an asyncio one."""
    if url.startswith(f"{SENTINEL_SCHEME}:"):
        return sync_sentinel_client(url, options)
    if not is_cluster_url(url):
        return redis.Redis.from_url(url, **_server_options(url, options))
    options = _cluster_options(url, options)
    nodes = [redis.cluster.ClusterNode(node.host, node.port) for node in options["startup_nodes"]]  # type: ignore[no-untyped-call]
    return redis.cluster.RedisCluster(**{**options, "startup_nodes": nodes})


def _check_closed_sockets(client: aioredis.Redis) -> aioredis.Redis:
    """Make ``client``'s pool see a socket the server closed (Redis restarted, idle timeout).

    The pool checks each connection it hands out (``ensure_connection``: ``can_read``, a read
    with a zero timeout), which misses the end of stream the event loop has already read into the
    connection's reader: the next command then fails on the dead socket though Redis is up. The
    pool's connections get a ``can_read`` that reports such a socket, so the pool reconnects.
    """
    pool = client.connection_pool
    pool.connection_class = _closed_socket_checking(pool.connection_class)
    return client


def _closed_socket_checking(base: type[AbstractConnection]) -> type[AbstractConnection]:
    """Return ``base`` whose ``can_read`` raises ConnectionError on a socket the server closed."""
    if issubclass(base, _ClosedSocketCheck):
        return base
    checking = _CHECKING.get(base)
    if checking is None:
        checking = _CHECKING[base] = type(base.__name__, (_ClosedSocketCheck, base), {})
    return checking


#: Each connection class seen, with ``_ClosedSocketCheck`` mixed in (made once per class).
_CHECKING: dict[type[AbstractConnection], type[AbstractConnection]] = {}


class _ClosedSocketCheck:
    """Mixin of an asyncio connection class: ``can_read`` first asks the stream reader."""

    _reader: asyncio.StreamReader | None

    async def can_read(self) -> bool:
        """Raise ConnectionError when the server closed the socket, else check as redis-py does."""
        reader = self._reader
        if reader is not None and (reader.at_eof() or reader.exception() is not None):
            raise redis.ConnectionError("Connection closed by server.")
        return await super().can_read()  # type: ignore[misc,no-any-return]


def _server_options(url: str, options: dict[str, Any]) -> dict[str, Any]:
    """Return a single server's options: without the TCP ones for a ``unix://`` socket."""
    if not url.startswith("unix:"):
        return options
    return {name: value for name, value in options.items() if name not in TCP_ONLY}


def _cluster_options(url: str, options: dict[str, Any]) -> dict[str, Any]:
    """Return a cluster client's options: startup nodes and login from ``url``, then ``options``."""
    parts = urlsplit(url)
    kept = {name: value for name, value in options.items() if name not in SINGLE_SERVER_ONLY}
    return {
        "startup_nodes": _nodes(parts.netloc.rpartition("@")[2]),
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "ssl": parts.scheme.startswith("rediss"),
        **kept,
    }


def _nodes(hosts: str) -> list[ClusterNode]:
    """Parse ``host:port[,host:port...]`` (``[v6]:port`` too) into startup nodes."""
    nodes = []
    for item in filter(None, (part.strip() for part in hosts.split(","))):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError("a redis+cluster:// URL lists nodes as host:port[,host:port...]")
        nodes.append(ClusterNode(host.strip("[]"), int(port)))
    if not nodes:
        raise ConfigError("a redis+cluster:// URL names no node")
    return nodes
