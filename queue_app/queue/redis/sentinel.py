"""Redis Sentinel: ``redis+sentinel://`` URLs and the clients of the master they name.

``redis+sentinel://[[user]:password@]host:port[,host:port...]/<master-name>[/db]``: the master
that the Sentinels at ``host:port,...`` (port 26379 when left out) name ``<master-name>``,
database ``db`` (0 when left out). The user and password log in to the master; the Sentinels
are asked without them. Each new connection asks the Sentinels where the master is, so a
client follows a failover: commands in flight when the master dies fail
(``QueueConnectionError`` at the queue's API) and the next ones reach the promoted replica.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio as aioredis
import redis.asyncio.sentinel as aiosentinel
import redis.sentinel

from ..errors import ConfigError

SENTINEL_SCHEME = "redis+sentinel"
#: Port of a Sentinel written without one.
SENTINEL_PORT = 26379


@dataclass(frozen=True, slots=True, kw_only=True)
class SentinelURL:
    """The parts of a ``redis+sentinel://`` URL."""

    #: ``(host, port)`` of each Sentinel, in the URL's order.
    sentinels: tuple[tuple[str, int], ...]
    #: Name of the monitored master (``sentinel monitor <name> ...``).
    master: str
    db: int = 0
    username: str | None = None
    password: str | None = None


def parse_sentinel_url(url: str) -> SentinelURL:
    """Read a ``redis+sentinel://`` URL.

    Raises:
        ConfigError: the URL is malformed (the message never repeats it: it may hold a password).
    """
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME or parts.query or parts.fragment:
        raise ConfigError(_FORM)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    names = [name for name in parts.path.split("/")[1:] if name]
    if not hosts or not 1 <= len(names) <= 2 or (len(names) == 2 and not names[1].isdigit()):
        raise ConfigError(_FORM)
    username, _, password = userinfo.partition(":") if userinfo else ("", "", "")
    return SentinelURL(
        sentinels=tuple(_address(host) for host in hosts.split(",")),
        master=unquote(names[0]),
        db=int(names[1]) if len(names) == 2 else 0,
        username=unquote(username) or None,
        password=unquote(password) or None,
    )


_FORM = f"a Sentinel URL is {SENTINEL_SCHEME}://[:password@]host:port[,host:port...]/master[/db]"


def _address(host: str) -> tuple[str, int]:
    name, colon, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
    if not colon:
        name, port = host, str(SENTINEL_PORT)
    name = name.removeprefix("[").removesuffix("]")
    if not name or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(_FORM)
    return name, int(port)


def _login(parsed: SentinelURL) -> dict[str, Any]:
    """Return the master's connection options that the URL sets: database and login."""
    return {"db": parsed.db, "username": parsed.username, "password": parsed.password}


class _AsyncSentinelMaster(aioredis.Redis):
    """The master's client; closing it closes the Sentinel clients that locate the master."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        await self.connection_pool.sentinel_manager.aclose()  # type: ignore[attr-defined]


class _SentinelMaster(redis.Redis):
    """The master's client (sync); closing it closes the Sentinel clients too."""

    def close(self) -> None:
        super().close()
        self.connection_pool.sentinel_manager.close()  # type: ignore[attr-defined]


def sentinel_client(url: str, options: dict[str, Any]) -> aioredis.Redis:
    """Return an asyncio client of the master that the Sentinel URL ``url`` names."""
    parsed = parse_sentinel_url(url)
    # The Sentinels get the caller's socket_* options (timeouts, keepalive); the master all.
    sentinel = aiosentinel.Sentinel(list(parsed.sentinels), **options)  # type: ignore[no-untyped-call]
    master = sentinel.master_for(parsed.master, _AsyncSentinelMaster, **_login(parsed))
    return cast(aioredis.Redis, master)


def sync_sentinel_client(url: str, options: dict[str, Any]) -> redis.Redis:
    """Return a blocking client of the master that the Sentinel URL ``url`` names."""
    parsed = parse_sentinel_url(url)
    sentinel = redis.sentinel.Sentinel(list(parsed.sentinels), **options)  # type: ignore[no-untyped-call]
    master = sentinel.master_for(parsed.master, _SentinelMaster, **_login(parsed))  # type: ignore[no-untyped-call]
    return cast(redis.Redis, master)
