"""Enqueue script calls, confirmed by replicas (``WAIT``) when the config asks; async and sync.

With ``QueueConfig.enqueue_replicas`` = n > 0, ``WAIT n enqueue_wait_ms`` follows the script
calls in the same pipeline (one round trip, one connection, so it waits for exactly these
writes). Fewer than n confirmations raise ``EnqueueNotReplicated``: the caller is not told the
jobs are safe, since a failover to a replica that lacks them would lose them.

The first calls on a client go in a pipeline behind ``SCRIPT LOAD`` of the script, in the same
round trip: a process that starts with a large batch would otherwise send it twice (refused as
NOSCRIPT, then again after the load). A server that loses the script later (a restart, SCRIPT
FLUSH) refuses the calls, and they are sent again after a load, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError

from ..config import QueueConfig
from ..errors import EnqueueNotReplicated
from .connect import is_cluster_client
from .lane import Lane, SyncLane
from .scripts import SCRIPTS, Call


async def run_enqueue(
    client: Any, calls: Sequence[Call], config: QueueConfig, lane: Lane | None = None
) -> list[Any]:
    """Run the enqueue script once per call, in one pipeline; return its replies.

    A single call without replicas to wait for goes on ``lane`` when one is given.

    Raises:
        ResponseError: a script call failed (``QUEUEFULL ...`` when refused by a depth limit).
        EnqueueNotReplicated: fewer than ``config.enqueue_replicas`` replicas confirmed.
    """
    if len(calls) == 1 and not config.enqueue_replicas and not _unloaded(client):
        return [await SCRIPTS["enqueue"](lane or client, *calls[0])]
    replies = await _run_all(client, calls, config)
    if _lost_script(replies):  # nothing was written: load it and run the calls again
        await SCRIPTS["enqueue"].load(client)
        replies = await _run_all(client, calls, config)
    return checked(replies, config)


def run_enqueue_sync(
    client: Any, calls: Sequence[Call], config: QueueConfig, lane: SyncLane | None = None
) -> list[Any]:
    """``run_enqueue`` on a sync client."""
    if len(calls) == 1 and not config.enqueue_replicas and not _unloaded(client):
        return [SCRIPTS["enqueue"].run_sync(lane or client, *calls[0])]
    if is_cluster_client(client):
        return checked([SCRIPTS["enqueue"].run_sync(client, *call) for call in calls], config)
    replies = _pipeline_sync(client, calls, config)
    if _lost_script(replies):
        client.script_load(SCRIPTS["enqueue"].source)
        replies = _pipeline_sync(client, calls, config)
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
    """Tell whether a pipeline on ``client`` loads the script first (no batch did it yet).

    Never on a cluster client: it cannot pipeline scripts; each call loads on its own node.
    """
    return client not in SCRIPTS["enqueue"].loaded_on and not is_cluster_client(client)


def _loading(pipe: Any, client: Any) -> bool:
    """Queue ``SCRIPT LOAD`` first in ``pipe`` when ``client`` needs it; tell whether it did."""
    load = _unloaded(client)
    if load:
        pipe.script_load(SCRIPTS["enqueue"].source)
    return load


def _loaded(client: Any, replies: list[Any]) -> list[Any]:
    """Drop the reply of ``SCRIPT LOAD`` (its failure shows as NOSCRIPT replies after it)."""
    SCRIPTS["enqueue"].loaded_on.add(client)
    return replies[1:]


def _lost_script(replies: list[Any]) -> bool:
    return any(isinstance(reply, NoScriptError) for reply in replies)


def _fill(pipe: Any, calls: Sequence[Call], config: QueueConfig) -> None:
    for keys, args in calls:
        SCRIPTS["enqueue"].queue(pipe, keys, args)
    if config.enqueue_replicas:
        pipe.wait(config.enqueue_replicas, config.enqueue_wait_ms)


async def _run_all(client: Any, calls: Sequence[Call], config: QueueConfig) -> list[Any]:
    if is_cluster_client(client):  # no EVALSHA in a cluster pipeline (and no WAIT: see config)
        return await SCRIPTS["enqueue"].run_many(client, calls)
    return await _pipeline(client, calls, config)


async def _pipeline(client: Any, calls: Sequence[Call], config: QueueConfig) -> list[Any]:
    async with client.pipeline(transaction=False) as pipe:
        load = _loading(pipe, client)
        _fill(pipe, calls, config)
        replies = list(await pipe.execute(raise_on_error=False))
    return _loaded(client, replies) if load else replies


def _pipeline_sync(client: Any, calls: Sequence[Call], config: QueueConfig) -> list[Any]:
    with client.pipeline(transaction=False) as pipe:
        load = _loading(pipe, client)
        _fill(pipe, calls, config)
        replies = list(pipe.execute(raise_on_error=False))
    return _loaded(client, replies) if load else replies
