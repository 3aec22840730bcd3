"""Enqueue script calls, confirmed by replicas (``WAIT``) when the config asks; async and sync.

The calls of one enqueue go in one round trip on one connection: the caller's lane when it has
one (``lane.py``: packed by hiredis, without the pool's bookkeeping), else a pipeline of the
client. With ``QueueConfig.enqueue_replicas`` = n > 0, ``WAIT n enqueue_wait_ms`` follows the
script calls in that round trip (so it waits for exactly these writes). Fewer than n
confirmations raise ``EnqueueNotReplicated``: the caller is not told the jobs are safe, since a
failover to a replica that lacks them would lose them.

The first calls on a client go behind ``FUNCTION LOAD`` of the library, in the same round trip:
a process that starts with a large batch on a server without the library would otherwise send
it twice (refused as an unknown function, then again after the load). A server that loses the
library later (a restart without persistence, FUNCTION FLUSH) refuses the calls, and they are
sent again after a load.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..config import QueueConfig
from ..errors import EnqueueNotReplicated
from .connect import is_cluster_client
from .lane import Lane, SyncLane, pipelined, pipelined_sync
from .scripts import SCRIPTS, SOURCE, Call, load, load_sync, lost


async def run_enqueue(
    client: Any, calls: Sequence[Call], config: QueueConfig, lane: Lane | None = None
) -> list[Any]:
    """Run the enqueue script once per call, in one round trip; return its replies.

    The calls go on ``lane`` when one is given (packed by hiredis), else in a pipeline of
    ``client``.

    Raises:
        ResponseError: a script call failed (``QUEUEFULL ...`` when refused by a depth limit).
        EnqueueNotReplicated: fewer than ``config.enqueue_replicas`` replicas confirmed.
    """
    if len(calls) == 1 and not config.enqueue_replicas and not _unloaded(client):
        return [await SCRIPTS["enqueue"](lane or client, *calls[0])]
    replies = await _run_all(client, calls, config, lane)
    if any(lost(reply) for reply in replies):  # nothing was written: load, run them again
        await load(client)
        replies = await _run_all(client, calls, config, lane)
    return checked(replies, config)


def run_enqueue_sync(
    client: Any, calls: Sequence[Call], config: QueueConfig, lane: SyncLane | None = None
) -> list[Any]:
    """``run_enqueue`` on a sync client."""
    if len(calls) == 1 and not config.enqueue_replicas and not _unloaded(client):
        return [SCRIPTS["enqueue"].run_sync(lane or client, *calls[0])]
    if is_cluster_client(client):
        return checked([SCRIPTS["enqueue"].run_sync(client, *call) for call in calls], config)
    replies = _round_trip_sync(client, calls, config, lane)
    if any(lost(reply) for reply in replies):
        load_sync(client)
        replies = _round_trip_sync(client, calls, config, lane)
    return checked(replies, config)


def checked(replies: list[Any], config: QueueConfig) -> list[Any]:
    """Raise the first error among ``replies``, then check WAIT's count; return the scripts'."""
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    if config.enqueue_replicas:
        acknowledged = int(replies.pop())
        if acknowledged < config.enqueue_replicas:
            raise EnqueueNotReplicated(
                acknowledged, config.enqueue_replicas, config.enqueue_wait_ms
            )
    return replies


def _unloaded(client: Any) -> bool:
    """Tell whether a round trip on ``client`` loads the library first (no batch did it yet).

    Never on a cluster client: it does not pipeline the calls; a lost library is loaded on
    every primary.
    """
    return client not in SCRIPTS["enqueue"].loaded_on and not is_cluster_client(client)


def _commands(client: Any, calls: Sequence[Call], config: QueueConfig) -> list[tuple[Any, ...]]:
    """Return the commands of one round trip: FUNCTION LOAD when needed, the calls, WAIT.

    The load leaves a library the server has as it is (an error reply, dropped): the name holds
    the code's digest, so a library of that name is this code."""
    script = SCRIPTS["enqueue"]
    commands = [script.command(keys, args) for keys, args in calls]
    if _unloaded(client):
        commands.insert(0, ("FUNCTION", "LOAD", SOURCE))
    if config.enqueue_replicas:
        commands.append(("WAIT", config.enqueue_replicas, config.enqueue_wait_ms))
    return commands


def _scripts_replies(client: Any, commands: list[tuple[Any, ...]], replies: list[Any]) -> list[Any]:
    """Drop the reply of a ``FUNCTION LOAD`` (a failed load shows in the calls' replies)."""
    if commands[0][0] != "FUNCTION":
        return replies
    SCRIPTS["enqueue"].loaded_on.add(client)
    return replies[1:]


async def _run_all(
    client: Any, calls: Sequence[Call], config: QueueConfig, lane: Lane | None
) -> list[Any]:
    if is_cluster_client(client):  # no FCALL in a cluster pipeline (and no WAIT: see config)
        return await SCRIPTS["enqueue"].run_many(client, calls)
    commands = _commands(client, calls, config)
    if lane is None:
        replies = await pipelined(client, commands)
    else:
        replies = await lane.execute_many(*commands)
    return _scripts_replies(client, commands, replies)


def _round_trip_sync(
    client: Any, calls: Sequence[Call], config: QueueConfig, lane: SyncLane | None
) -> list[Any]:
    commands = _commands(client, calls, config)
    replies = pipelined_sync(client, commands) if lane is None else lane.execute_many(*commands)
    return _scripts_replies(client, commands, replies)
