"""Lanes: one connection of a client's pool, kept by one caller for its script calls one by one.

For every command, redis-py takes a connection from its pool and gives it back, with bookkeeping
around it (pool lock, a readiness poll, retry wrapper, observation hooks) that costs more client
CPU than the round trip itself (``bench/enqueue_floors.py``: 70 µs against 20-30 µs sync, 120
against 55-70 asyncio). A lane keeps one connection of the client's pool and sends packed
commands on it, under the connection's own retry policy, timeouts and health checks, as the
client would. It serves one call at a time: a call that finds it busy (another coroutine or
thread) goes through the client, so concurrent callers never wait for the lane. A cluster client
has no lane (each call goes to the node of its slot).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import hiredis
import redis
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError, ResponseError, TimeoutError

from .connect import is_cluster_client


class Lane:
    """One connection of an asyncio client's pool for ``fcall`` calls, one at a time."""

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._connection: AbstractConnection | None = None
        self._busy = False
        #: Round trips that failed on the connection (each retried or raised): a call whose
        #: reply was lost may have run in Redis.
        self.failed_round_trips = 0

    @classmethod
    def of(cls, client: Any) -> Lane | None:
        """Return a lane on ``client``'s pool, or None for a cluster client."""
        return None if is_cluster_client(client) else cls(client)

    async def fcall(self, function: str, numkeys: int, *keys_and_args: Any) -> Any:
        """Call a function of a loaded library."""
        return await self.execute("FCALL", function, numkeys, *keys_and_args)

    async def function_load(self, source: str, replace: bool = False) -> Any:
        """Load a library (on the lane: a server that lost it may have lost the socket too)."""
        return await self.execute("FUNCTION", "LOAD", *(["REPLACE"] if replace else []), source)

    async def execute(self, *args: Any) -> Any:
        """Run a command on the lane's connection (through the client when the lane is busy)."""
        if self._busy:
            return await self._client.execute_command(*args)  # type: ignore[no-untyped-call]
        [reply] = await self._exchange([args])
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    async def execute_many(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Run commands in one round trip; return replies, errors in place, as a pipeline does.

        Replies come as the client parses them (its response callbacks); through the client's
        own pipeline when the lane is busy.
        """
        if self._busy:
            return await pipelined(self._client, commands)
        raw = await self._exchange(commands)
        return _parsed(self._client.response_callbacks, commands, raw)

    async def _exchange(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Send ``commands`` packed on the lane's connection; return the raw replies, errors in
        place, under the connection's retry policy."""
        self._busy = True
        try:
            connection = self._connection or await self._take()
            # As the pool checks a connection it hands out: (re)connected, nothing unread.
            await self._client.connection_pool.ensure_connection(connection)
            packed = b"".join(hiredis.pack_command(args) for args in commands)
            return await connection.retry.call_with_retry(
                lambda: _round_trips(connection, packed, len(commands)),
                lambda error: self._failed(connection),
            )
        finally:
            self._busy = False

    async def _failed(self, connection: AbstractConnection) -> None:
        self.failed_round_trips += 1
        await connection.disconnect()

    async def _take(self) -> AbstractConnection:
        self._connection = await self._client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
        return self._connection

    async def close(self) -> None:
        """Give the connection back to the pool."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await self._client.connection_pool.release(connection)


def _parsed(callbacks: Any, commands: Sequence[tuple[Any, ...]], raw: list[Any]) -> list[Any]:
    """Return raw replies as the client parses them (its response callbacks), errors as they are."""
    return [
        reply
        if isinstance(reply, ResponseError) or args[0] not in callbacks
        else callbacks[args[0]](reply)
        for args, reply in zip(commands, raw, strict=True)
    ]


async def pipelined(client: Redis, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Run commands in one pipeline of ``client``; return replies, errors in place."""
    async with client.pipeline(transaction=False) as pipe:
        for args in commands:
            pipe.execute_command(*args)
        return list(await pipe.execute(raise_on_error=False))


def pipelined_sync(client: Any, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """``pipelined`` on a sync client."""
    with client.pipeline(transaction=False) as pipe:
        for args in commands:
            pipe.execute_command(*args)
        return list(pipe.execute(raise_on_error=False))


async def _round_trips(connection: AbstractConnection, packed: bytes, count: int) -> list[Any]:
    """Send ``count`` packed commands and read their replies, an error reply in its place."""
    try:
        await connection.send_packed_command(packed)
        replies: list[Any] = []
        for _ in range(count):
            try:
                replies.append(await connection.read_response())
            except ResponseError as error:
                replies.append(error)
        return replies
    except BaseException:
        await connection.disconnect()
        raise


class SyncLane:
    """One connection of a sync client's pool for ``fcall`` calls, one thread at a time."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._connection: Any = None
        self._pid = os.getpid()

    @classmethod
    def of(cls, client: Any) -> SyncLane | None:
        """Return a lane on ``client``'s pool, or None for a cluster client."""
        return None if is_cluster_client(client) else cls(client)

    def fcall(self, function: str, numkeys: int, *keys_and_args: Any) -> Any:
        """Call a function of a loaded library."""
        return self.execute("FCALL", function, numkeys, *keys_and_args)

    def function_load(self, source: str, replace: bool = False) -> Any:
        """Load a library (on the lane: a server that lost it may have lost the socket too)."""
        return self.execute("FUNCTION", "LOAD", *(["REPLACE"] if replace else []), source)

    def execute(self, *args: Any) -> Any:
        """Run a command on the lane's connection (through the client when the lane is busy)."""
        if not self._lock.acquire(blocking=False):
            return self._client.execute_command(*args)  # type: ignore[no-untyped-call]
        try:
            [reply] = self._exchange([args])
        finally:
            self._lock.release()
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    def execute_many(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Run commands in one round trip; return replies, errors in place (``Lane``'s)."""
        if not self._lock.acquire(blocking=False):
            return pipelined_sync(self._client, commands)
        try:
            raw = self._exchange(commands)
        finally:
            self._lock.release()
        return _parsed(self._client.response_callbacks, commands, raw)

    def _exchange(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """``Lane._exchange`` on the sync connection; the caller holds the lock."""
        connection = self._connection_here()
        _ensure_connection(connection)
        packed = [b"".join(hiredis.pack_command(args) for args in commands)]
        return connection.retry.call_with_retry(  # type: ignore[no-any-return]
            lambda: _sync_round_trips(connection, packed, len(commands)),
            lambda error: connection.disconnect(),
        )

    def _connection_here(self) -> Any:
        """Return the lane's connection, taken again in a forked child (sockets are not shared)."""
        if self._connection is None or self._pid != os.getpid():
            self._pid = os.getpid()
            self._connection = self._client.connection_pool.get_connection()
        return self._connection

    def close(self) -> None:
        """Give the connection back to the pool."""
        with self._lock:
            connection, self._connection = self._connection, None
            if connection is not None and self._pid == os.getpid():
                self._client.connection_pool.release(connection)


def _ensure_connection(connection: Any) -> None:
    """Connect, or reconnect a connection the server closed, as the sync pool does on a take.

    ``connect()`` (not the implicit connect of a send) asks a Sentinel where the master is now.
    """
    connection.connect()
    try:
        if connection.can_read():
            raise ConnectionError("Connection has data")
    except (ConnectionError, TimeoutError, OSError):
        connection.disconnect()
        connection.connect()
        if connection.can_read():
            raise ConnectionError("Connection not ready") from None


def _sync_round_trips(connection: Any, packed: list[bytes], count: int) -> list[Any]:
    """Send ``count`` packed commands and read their replies, an error reply in its place."""
    try:
        connection.send_packed_command(packed)
        replies: list[Any] = []
        for _ in range(count):
            try:
                replies.append(connection.read_response())
            except ResponseError as error:
                replies.append(error)
        return replies
    except BaseException:
        connection.disconnect()
        raise
