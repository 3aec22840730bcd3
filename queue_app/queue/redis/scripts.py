"""Lua scripts, one per state change, and the code that runs them by SHA."""

from __future__ import annotations

import asyncio
import hashlib
import re
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.cluster import RedisCluster as SyncCluster
from redis.exceptions import NoScriptError, ResponseError

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


#: A top-level ``local`` of the prelude or lib.lua: ``local function name(`` or ``local a, b =``.
_DEFINITION = re.compile(r"^local (?:function )?([\w, ]+?) *[=(]", re.MULTILINE)
#: What is not code: a string literal or a comment (to the end of its line).
_NOT_CODE = re.compile(r"'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"|--[^\n]*")
_NAME = re.compile(r"[A-Za-z_]\w*")


def definitions(lua: str) -> list[tuple[frozenset[str], str]]:
    """Split top-level Lua into its definitions: (names defined, text), in order.

    A definition starts at a line ``local ...`` or at the comment lines just before one, and runs
    to the next; statements between definitions belong to the one before them.
    """
    chunks: list[list[str]] = []
    for line in lua.splitlines(keepends=True):
        only_comments = bool(chunks) and all(seen.startswith("--") for seen in chunks[-1])
        if not chunks or (line.startswith(("local ", "--")) and not only_comments):
            chunks.append([])
        chunks[-1].append(line)
    found = []
    for lines in chunks:
        text = "".join(lines)
        match = _DEFINITION.search(_NOT_CODE.sub("", text))
        names = frozenset(n.strip() for n in match.group(1).split(",")) if match else frozenset()
        found.append((names, text))
    return found


def names_used(lua: str) -> set[str]:
    """Return the names ``lua`` mentions outside strings and comments."""
    return set(_NAME.findall(_NOT_CODE.sub(" ", lua)))


def used_definitions(shared: str, body: str) -> str:
    """Return the definitions of ``shared`` that ``body`` uses, directly or through others."""
    chunks = definitions(shared)
    wanted: set[int] = set()
    todo = names_used(body)
    while todo:
        name = todo.pop()
        for i, (names, text) in enumerate(chunks):
            if name in names and i not in wanted:
                wanted.add(i)
                todo |= names_used(text) - names
    return "".join(text for i, (_, text) in enumerate(chunks) if i in wanted)


def _source(name: str) -> str:
    """Return the Lua of script ``name``: the definitions it uses, then its own code.

    Redis runs a script's whole text on every call: each helper it defines costs a closure,
    each setting a parse, and the clock a call of TIME. Leaving out what the script does not
    use makes every call cheaper.
    """
    body = (_LUA_DIR / f"{name}.lua").read_text()
    shared = lua_prelude(name) + (_LUA_DIR / "lib.lua").read_text()
    return used_definitions(shared, body) + body


class Script:
    """One Lua script, called with EVALSHA and loaded again when Redis lost it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.source = _source(name)
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()
        #: Clients on whose server a batch loaded the script (``replication.run_enqueue``): a
        #: hint, not a guarantee (a restart or SCRIPT FLUSH empties the server's cache).
        self.loaded_on: weakref.WeakSet[Any] = weakref.WeakSet()

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

    def command(self, keys: list[Any], args: list[Any]) -> tuple[Any, ...]:
        """Return the EVALSHA command of a call, to send with others."""
        return ("EVALSHA", self.sha, len(keys), *keys, *args)

    async def run_one(self, client: Redis | Lane, keys: list[Any], args: list[Any]) -> Any:
        """Run the script once; return its reply, or its error reply, as ``run_many`` does.

        A NoScriptError is returned too: the caller reloads (every script, after a restart).
        """
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except ResponseError as error:
            return error

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
