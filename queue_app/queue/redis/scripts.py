"""Lua scripts, one per state change: the functions of one Redis library, and the code that
runs them (FCALL) and loads the library where the server lacks it."""

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
from redis.exceptions import ResponseError

from ..errors import RedisTooOld
from .connect import is_cluster_client
from .keys import LUA_JOB_FIELDS, lua_key_counts, lua_key_function
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


#: Start of the library's name; a digest of its code follows.
LIBRARY_PREFIX = "aragora_"


def _uses_clock(body: str, shared: str) -> bool:
    """Tell whether a script reads the clock (directly or through a helper it uses)."""
    return bool({"NOW_MS", "NOW_S"} & names_used(used_definitions(shared, body) + body))


def _library() -> tuple[str, str]:
    """Return the library's name and its source: every script a function of it.

    A script's file defines ``run()``, the code of one call, after the helpers only it uses (in
    a block of its own: another script's helpers of the same name are others).

    The library's helpers are made once, when Redis loads it; a call pays for its own work only
    (an EVAL script makes its helpers, closures, on every call: 40-50k instructions, a third of
    an empty take). The name holds a digest of the code: versions of the library side by side
    on one server (a rolling deploy) keep their own functions.
    """
    shared = (
        LUA_JOB_FIELDS + (_LUA_DIR / "call.lua").read_text() + (_LUA_DIR / "lib.lua").read_text()
    )
    parts, registrations = [shared], []
    for name in NAMES:
        body = (_LUA_DIR / f"{name}.lua").read_text()
        always, single = lua_key_counts(name)
        clock = "true" if _uses_clock(body, shared) else "false"
        parts.append(f"{lua_key_function(name)}local run_{name}\ndo\n{body}run_{name} = run\nend\n")
        registrations.append(
            f"redis.register_function('%(library)s_{name}', function(keys, args)\n"
            f"  begin(keys, args, key_{name}, {always}, {single}, {clock})\n"
            f"  return run_{name}()\nend)\n"
        )
    code = "".join(parts + registrations)
    library = LIBRARY_PREFIX + hashlib.sha1(code.encode()).hexdigest()[:16]
    return library, f"#!lua name={library}\n" + code.replace("%(library)s", library)


LIBRARY, SOURCE = _library()


def lost(reply: object) -> bool:
    """Tell whether ``reply`` says the server lacks the library (a restart, FUNCTION FLUSH)."""
    return isinstance(reply, ResponseError) and str(reply).startswith("Function not found")


async def load(client: Any) -> None:
    """Load the library (again: replaced by the same code if the server has it)."""
    await client.function_load(SOURCE, replace=True)


async def prepare(client: Any) -> None:
    """Load the library unless the server has it (then the first calls need not carry it).

    A load of this version deletes the libraries of other versions (on every primary of a
    cluster): each deploy would leave one more. A process still running an older version loads
    its own again at its next call, as after a restart, so at most the versions running at
    once stay.

    Raises:
        RedisTooOld: the server has no functions (Redis < 7.0).
    """
    try:
        if is_cluster_client(client):
            await load(client)  # on every primary
        else:
            await client.function_load(SOURCE)  # refused, cheaply, when the server has it
        await _delete_other_versions(client)
    except ResponseError as error:
        if "unknown command" in str(error).lower():
            raise RedisTooOld(f"{RedisTooOld.__doc__} The server said: {error}") from error
        if "already exists" not in str(error):
            return  # not allowed to load (ACL), out of memory...: the first calls load it
    SCRIPTS["enqueue"].loaded_on.add(client)


async def _delete_other_versions(client: Any) -> None:
    """Delete the libraries of other versions: on the server, or on each primary of a cluster."""
    nodes = client.get_primaries() if is_cluster_client(client) else [None]
    pattern = f"{LIBRARY_PREFIX}*"
    for node in nodes:
        on_node = {} if node is None else {"target_nodes": node}
        listed = await client.execute_command("FUNCTION", "LIST", "LIBRARYNAME", pattern, **on_node)
        for name in {_library_name(entry) for entry in listed} - {LIBRARY}:
            await client.execute_command("FUNCTION", "DELETE", name, **on_node)


def _library_name(entry: Any) -> str:
    """Return the name in one entry of FUNCTION LIST (flat pairs, or a map with RESP3)."""
    fields = entry if isinstance(entry, dict) else dict(zip(entry[::2], entry[1::2], strict=True))
    named = {_str(key): value for key, value in fields.items()}
    return _str(named["library_name"])


def _str(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def load_sync(client: Any) -> None:
    """``load`` on a sync client."""
    client.function_load(SOURCE, replace=True)


class Script:
    """One script: a function of the library, called with FCALL; the library loaded again when
    Redis lost it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.function = f"{LIBRARY}_{name}"
        #: Clients on whose server the library was loaded (by ``prepare``, or by a batch of
        #: ``replication.run_enqueue``): a hint, not a guarantee (a restart or FUNCTION FLUSH
        #: empties the server's functions).
        self.loaded_on: weakref.WeakSet[Any] = weakref.WeakSet()

    async def __call__(self, client: Redis | Lane, keys: list[Any], args: list[Any]) -> Any:
        """Run the script; load the library first when the server does not have it."""
        try:
            return await client.fcall(self.function, len(keys), *keys, *args)
        except ResponseError as error:
            if not lost(error):
                raise
            await load(client)
            return await client.fcall(self.function, len(keys), *keys, *args)

    def run_sync(
        self, client: SyncRedis | SyncCluster | SyncLane, keys: list[Any], args: list[Any]
    ) -> Any:
        """Run the script on a sync client; load the library first when the server lacks it."""
        try:
            return client.fcall(self.function, len(keys), *keys, *args)
        except ResponseError as error:
            if not lost(error):
                raise
            load_sync(client)
            return client.fcall(self.function, len(keys), *keys, *args)

    def command(self, keys: list[Any], args: list[Any]) -> tuple[Any, ...]:
        """Return the FCALL command of a call, to send with others."""
        return ("FCALL", self.function, len(keys), *keys, *args)

    async def run_one(self, client: Redis | Lane, keys: list[Any], args: list[Any]) -> Any:
        """Run the script once; return its reply, or its error reply, as ``run_many`` does.

        A lost library's error is returned too: the caller loads it (``lost``, ``load``).
        """
        try:
            return await client.fcall(self.function, len(keys), *keys, *args)
        except ResponseError as error:
            return error

    async def run_many(
        self, client: Any, calls: Sequence[tuple[list[str], list[Any]]]
    ) -> list[Any]:
        """Run the script once per ``(keys, args)``, all at once; return replies or errors in order.

        One pipeline on a single server; on a cluster client the calls go concurrently, each to
        the node of its slot. The caller loads the library on a ``lost`` reply.
        """
        if is_cluster_client(client):
            runs = (client.fcall(self.function, len(keys), *keys, *args) for keys, args in calls)
            return list(await asyncio.gather(*runs, return_exceptions=True))
        async with client.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.fcall(self.function, len(keys), *keys, *args)
            return list(await pipe.execute(raise_on_error=False))


SCRIPTS: dict[str, Script] = {name: Script(name) for name in NAMES}
