"""Lua scripts, one per state change, and the code that runs them by SHA."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.client import Pipeline as SyncPipeline
from redis.cluster import RedisCluster as SyncCluster
from redis.exceptions import NoScriptError

from .connect import is_cluster_client
from .keys import lua_prelude
from .lane import Lane, SyncLane

_LUA_DIR = Path(__file__).with_name("lua")
#: The KEYS (str or bytes) and ARGV of one script call.
type Call = tuple[list[Any], list[Any]]
NAMES = (
    "enqueue",
    "take",
    "start",
    "finish",
    "promote",
    "cancel",
    "claim",
    "heartbeat",
    "revive",
    "progress",
    "checkpoint",
    "scoped",
    "ledger_jobs",
)


#: The line of lib.lua after which its helpers serve only the scripts that change delivered jobs:
#: enqueue.lua leaves them out (defining a function costs Redis on every call of the script).
ENQUEUE_LIB_END = "-- enqueue.lua takes lib.lua up to this line"


def _source(name: str) -> str:
    lib = (_LUA_DIR / "lib.lua").read_text()
    if name == "enqueue":
        lib = lib[: lib.index(ENQUEUE_LIB_END)]
    return lua_prelude(name) + lib + (_LUA_DIR / f"{name}.lua").read_text()


class Script:
    """One Lua script, called with EVALSHA and loaded again when Redis lost it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.source = _source(name)
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()

    async def __call__(self, client: Redis | Lane, keys: list[Any], args: list[Any]) -> Any:
        """Run the script; load it first when the server does not know it."""
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await client.script_load(self.source)
            return await client.evalsha(self.sha, len(keys), *keys, *args)

    def run_sync(
        self, client: SyncRedis | SyncCluster | SyncLane, keys: list[Any], args: list[Any]
    ) -> Any:
        """Run the script on a sync client; load it first when the server does not know it."""
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            client.script_load(self.source)
            return client.evalsha(self.sha, len(keys), *keys, *args)

    def queue(self, pipe: SyncPipeline, keys: list[Any], args: list[Any]) -> None:
        """Add a call to a pipeline (the caller reloads on NoScriptError)."""
        pipe.evalsha(self.sha, len(keys), *keys, *args)

    async def run_many(
        self, client: Any, calls: Sequence[tuple[list[str], list[Any]]]
    ) -> list[Any]:
        """Run the script once per ``(keys, args)``, all at once; return replies or errors in order.

        One pipeline on a single server; a cluster client cannot pipeline EVALSHA, so there the
        calls go concurrently, each to the node of its slot. The caller reloads the script on a
        NoScriptError reply.
        """
        if is_cluster_client(client):
            runs = (client.evalsha(self.sha, len(keys), *keys, *args) for keys, args in calls)
            return list(await asyncio.gather(*runs, return_exceptions=True))
        async with client.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(self.sha, len(keys), *keys, *args)
            return list(await pipe.execute(raise_on_error=False))

    async def load(self, client: Redis) -> None:
        """Load the script into the server's script cache."""
        await client.script_load(self.source)


SCRIPTS: dict[str, Script] = {name: Script(name) for name in NAMES}


async def load_all(client: Redis) -> None:
    """Load every script (after a restart of Redis flushed the script cache)."""
    for script in SCRIPTS.values():
        await script.load(client)
