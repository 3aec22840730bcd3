"""Every Lua script touches only keys it was given in KEYS, or keys keys.py lets it derive.

A private redis-server records every command (MONITOR) while one scenario runs each script; the
keys of each command a script ran come from ``COMMAND GETKEYS``. With cluster keys every one of
them must hash to the slot of the script's KEYS[1] (what Redis Cluster requires).
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import pytest
import redis
import redis.asyncio as aioredis
from redis.crc import key_slot

from queue_app.queue import Job, QueueConfig, RedisStreamsQueue
from queue_app.queue.redis import LedgerReader
from queue_app.queue.redis.scripts import SCRIPTS, load
from tests.conftest import RedisServer

PREFIX = "aragora:queue:"
END = "script-keys-test-end"
#: Scripts that read job ids inside (streams, sorted sets) and so derive their job hashes.
DERIVE_JOBS = {"enqueue", "take", "start", "claim", "promote", "scoped"}
_QUOTED = re.compile(r'"((?:\\.|[^"\\])*)"')
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b", '"': '"', "\\": "\\"}


@dataclass
class ScriptCall:
    """One FCALL seen by MONITOR and the commands its function ran."""

    name: str
    keys: list[str]
    argv: list[str]
    commands: list[list[str]] = field(default_factory=list)


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and text[i + 1] == "x":
            out.append(chr(int(text[i + 2 : i + 4], 16)))
            i += 4
        elif text[i] == "\\":
            out.append(_ESCAPES.get(text[i + 1], text[i + 1]))
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


class Monitor:
    """Collect the script calls a server runs, from a MONITOR connection read in a thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.calls: list[ScriptCall] = []
        self._names = {script.function: name for name, script in SCRIPTS.items()}
        self._connection = redis.Connection(port=port, decode_responses=True, socket_timeout=60)
        self._connection.send_command("MONITOR")
        assert self._connection.read_response() == "OK"
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            line = str(self._connection.read_response())
            words = [_unescape(word) for word in _QUOTED.findall(line)]
            if [word.lower() for word in words[:2]] == ["echo", END]:
                return
            if "[0 lua]" in line and self.calls:
                self.calls[-1].commands.append(words)
            elif words and words[0].lower() == "fcall":
                count = int(words[2])
                name = self._names[words[1]]
                self.calls.append(ScriptCall(name, words[3 : 3 + count], words[3 + count :]))

    def stop(self) -> list[ScriptCall]:
        with redis.Redis(port=self.port) as client:
            client.echo(END)
        self._thread.join(timeout=10)
        self._connection.disconnect()
        return self.calls


def touched_keys(client: redis.Redis, command: list[str]) -> list[str]:
    """Return the keys ``command`` names, as the server parses it."""
    try:
        return [str(key) for key in client.command_getkeys(*command)]
    except redis.ResponseError:  # a command without keys (TIME)
        return []


def undeclared_but_allowed(call: ScriptCall, cluster: bool) -> Callable[[str], bool]:
    """Return the test of keys.py's derived keys for this call: streams, minutes, job hashes."""
    base = re.escape(call.keys[0].removesuffix("stream"))
    jobs = base if cluster else re.escape(PREFIX)
    patterns = [rf"{base}stream:p-?\d+", rf"{base}m:\d+"]
    if call.name in DERIVE_JOBS:
        patterns.append(rf"{jobs}job:.+")
    return lambda key: any(re.fullmatch(pattern, key) for pattern in patterns)


async def run_every_script(config: QueueConfig) -> None:
    """Run each script at least once, on two queues, with priorities, delays and scopes."""
    clients = [aioredis.from_url(config.redis_url, decode_responses=True) for _ in range(2)]
    queue = RedisStreamsQueue(clients[0], "consumer-1", config)
    other = RedisStreamsQueue(clients[1], "dead-1", config)
    await load(clients[0])  # no lost-library replies: each FCALL seen runs its function
    try:
        await _enqueue_and_run(queue, other)
    finally:
        for client in clients:
            await client.aclose()


async def _enqueue_and_run(queue: RedisStreamsQueue, other: RedisStreamsQueue) -> None:
    owner = {"owner": "7"}
    urgent = await queue.enqueue(Job(payload={}, metadata=owner), priority=5, queue_name="alpha")
    await queue.enqueue(Job(payload={}, metadata=owner), queue_name="alpha")
    await queue.enqueue(Job(payload={}), queue_name="alpha", delay_seconds=0.05)
    await queue.enqueue_many([Job(payload={}) for _ in range(4)], queue_name="beta")
    await queue.redis.xadd(queue.keys.stream("beta"), {"junk": "1"})  # dead-lettered entry
    assert (await other.dequeue("dead", timeout_ms=100, queue_name="alpha")).id == urgent
    jobs = await queue.dequeue_many("w", 10, 100, ["alpha", "beta"])
    first, second, third, fourth = (job.id for job in jobs[:4])
    assert await queue.set_progress(first, {"done": 1})
    assert await queue.save_checkpoint(first, "item-1", {"ok": True})
    assert await queue.heartbeat() == []
    rows = [(first, "", "completed", "null", 0), (second, "", "failed", "boom", 0)]
    rows += [(third, "", "retry", "again", 10), (fourth, "", "requeue", "", 0)]
    await queue.finish_many(rows)
    assert await queue.revive(second) and await queue.cancel(third)
    await asyncio.sleep(0.06)
    await queue.promote(["alpha", "beta"])
    assert await queue.claim_stale_jobs(0, ["alpha", "beta"]) >= 1
    taken = await queue.dequeue_many("w", 10, 100, ["alpha", "beta"])
    assert urgent in {job.id for job in taken}
    await queue.tracker.list_scoped(["owner:7"])
    await queue.tracker.list_scoped(["owner:7"], status="pending", queue_name="alpha")
    assert await LedgerReader(queue.redis, "ledger", queue.config).read(block_ms=10)


@pytest.fixture
def monitored(redis_server_factory: Callable[..., RedisServer]) -> Iterator[RedisServer]:
    yield redis_server_factory()


@pytest.mark.parametrize("cluster", [True, False], ids=["cluster-keys", "one-server-keys"])
def test_scripts_touch_only_declared_or_derived_keys_of_one_slot(
    monitored: RedisServer, cluster: bool
) -> None:
    config = QueueConfig(
        redis_url=monitored.url,
        cluster_keys=cluster,
        queues=frozenset({"debates", "alpha", "beta"}),
        max_depths={"beta": 100},
    )
    monitor = Monitor(monitored.port)
    try:
        asyncio.run(run_every_script(config))
    finally:
        calls = monitor.stop()
    assert {call.name for call in calls} == set(SCRIPTS)
    with redis.Redis(port=monitored.port, decode_responses=True) as client:
        for call in calls:
            derived = undeclared_but_allowed(call, cluster)
            touched = {key for command in call.commands for key in touched_keys(client, command)}
            assert touched, call.name
            strays = sorted(key for key in touched - set(call.keys) if not derived(key))
            assert strays == [], f"{call.name} touched keys not in KEYS: {strays}"
            assert not [arg for arg in call.argv if arg.startswith(PREFIX)], call.name
            if cluster:
                slots = {key_slot(key.encode()) for key in {*touched, *call.keys}}
                assert slots == {key_slot(call.keys[0].encode())}, call.name


def test_cluster_keys_put_a_queues_keys_on_its_own_slot() -> None:
    alpha = replace(QueueConfig(cluster_keys=True)).stream_key.replace("debates", "alpha")
    assert key_slot(alpha.encode()) == key_slot(b"{alpha}")
