"""Lua scripts, one per state change, and the code that runs them by SHA."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError

from .keys import lua_prelude

_LUA_DIR = Path(__file__).with_name("lua")
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
)


def _source(name: str) -> str:
    lib = (_LUA_DIR / "lib.lua").read_text()
    return lua_prelude(name) + lib + (_LUA_DIR / f"{name}.lua").read_text()


class Script:
    """One Lua script, called with EVALSHA and loaded again when Redis lost it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.source = _source(name)
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()

    async def __call__(self, client: Redis, keys: list[str], args: list[Any]) -> Any:
        """Run the script; load it first when the server does not know it."""
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await client.script_load(self.source)
            return await client.evalsha(self.sha, len(keys), *keys, *args)

    def queue(self, pipe: Pipeline, keys: list[str], args: list[Any]) -> None:
        """Add a call to a pipeline (the caller reloads on NoScriptError)."""
        pipe.evalsha(self.sha, len(keys), *keys, *args)

    async def load(self, client: Redis) -> None:
        """Load the script into the server's script cache."""
        await client.script_load(self.source)


SCRIPTS: dict[str, Script] = {name: Script(name) for name in NAMES}


async def load_all(client: Redis) -> None:
    """Load every script (after a restart of Redis flushed the script cache)."""
    for script in SCRIPTS.values():
        await script.load(client)
