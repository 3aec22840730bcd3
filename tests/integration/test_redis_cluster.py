"""A real Redis Cluster (3 masters) behind ``redis+cluster://``: workers, web and metrics on it.

Jobs on two queues whose slots are on different masters run in ``manage.py queue_worker``
processes; one is killed (SIGKILL) mid-job and another takes its deliveries over. Every queue's
keys stay on its own slot, and the queues (and the worker registry) spread over the masters.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.tasks import TaskResultStatus
from redis.cluster import RedisCluster

from queue_app.queue import Job, QueueConfig, create_redis_queue
from queue_app.queue.redis import LedgerReader
from queue_app.queue.redis.observe import connect, read_snapshot
from queue_app.queue.redis.scripts import LIBRARY, SOURCE
from queue_app.tasks.examples import add, greet
from tests.integration.test_queue_inspect import run_inspect
from tests.obs_support import base_env, run_manage
from tests.process_support import RedisServer, wait_for
from tests.process_support import WorkerProcesses as Workers

#: Queues of two worker kinds; ``{diagnostics}`` and ``{tasks}`` hash to different masters.
QUEUES = ("diagnostics", "tasks")
#: Worker flags (both kinds in one process, each its own worker ``<id>/<queue>``).
FLAGS = ("--concurrency", "3")
TAG = re.compile(r"\{([^}]*)\}")
GLOBAL = re.compile(r"aragora:queue:(queues|rec:.+|lease:.+)")


def cluster_port() -> int:
    """Return a free port at most 55535 whose cluster bus port (+10000) is free too."""
    while True:
        port = random.randint(20_000, 55_535)
        try:
            for candidate in (port, port + 10_000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port


class Cluster:
    """Three master ``redis-server`` processes made one cluster by ``redis-cli --cluster``."""

    def __init__(self, make_server: Callable[..., RedisServer]) -> None:
        flags = ("--cluster-enabled", "yes", "--cluster-node-timeout", "5000")
        self.servers = [make_server(port=cluster_port(), extra=flags) for _ in range(3)]
        nodes = [f"127.0.0.1:{server.port}" for server in self.servers]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *nodes, "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        #: Two of the three nodes: the client discovers the third.
        self.url = "redis+cluster://" + ",".join(nodes[:2])
        deadline = time.monotonic() + 15
        while not self._ready():
            assert time.monotonic() < deadline, "cluster never reached cluster_state:ok"
            time.sleep(0.1)

    def _ready(self) -> bool:
        for server in self.servers:
            with redis.Redis(port=server.port) as node:
                if node.cluster("info")["cluster_state"] != "ok":
                    return False
        return True

    def client(self) -> RedisCluster:
        """Return a sync cluster client (for assertions)."""
        return RedisCluster(host="127.0.0.1", port=self.servers[0].port, decode_responses=True)

    def keys_by_node(self) -> dict[int, list[str]]:
        """Return every key of each node, by port (SCAN of each node on its own)."""
        found = {}
        for server in self.servers:
            with redis.Redis(port=server.port, decode_responses=True) as node:
                found[server.port] = list(node.scan_iter(count=1000))
        return found


@pytest.fixture
def cluster(redis_server_factory: Callable[..., RedisServer]) -> Cluster:
    return Cluster(redis_server_factory)


@pytest.fixture
def workers(cluster: Cluster, tmp_path: Path) -> Iterator[Workers]:
    env = {"ARAGORA_QUEUE_CLAIM_IDLE_MS": "10000"}
    started = Workers(cluster.url, tmp_path, queues=",".join(QUEUES), env=env)
    yield started
    started.stop_all()


async def enqueue_diagnostics(url: str, jobs: list[Job]) -> list[str]:
    queue = await create_redis_queue(consumer_name="producer", config=QueueConfig(redis_url=url))
    try:
        return await queue.enqueue_many(jobs, queue_name="diagnostics")
    finally:
        await queue.close()


def sleeper(seconds: float, tag: int) -> Job:
    return Job(payload={"seconds": seconds, "tag": tag}, metadata={"job_type": "sleep"})


def job_hash(client: RedisCluster, job_id: str, queue: str = "diagnostics") -> dict[str, str]:
    return client.hgetall(f"aragora:queue:{{{queue}}}:job:{job_id}")


def test_workers_on_a_cluster_survive_a_killed_worker(
    cluster: Cluster, workers: Workers, settings: Any
) -> None:
    settings.REDIS_URL = cluster.url  # the web side (django.tasks through the bridge) too
    client = cluster.client()
    sleepers = asyncio.run(enqueue_diagnostics(cluster.url, [sleeper(2, i) for i in range(6)]))
    doomed = workers.start("doomed", *FLAGS)
    running = lambda: {j for j in sleepers if job_hash(client, j).get("status") == "processing"}  # noqa: E731
    wait_for(lambda: len(running()) == 3, 20, "3 jobs in flight")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    in_flight = running()
    assert len(in_flight) == 3
    failing = Job(payload={"permanent": True}, metadata={"job_type": "fail"}, max_attempts=1)
    extra = asyncio.run(enqueue_diagnostics(cluster.url, [failing, sleeper(0.1, 9)]))
    summed, greeted = add.enqueue(2, 3), greet.enqueue("Ada")
    workers.start("heir", *FLAGS)

    wait_for(lambda: add.get_result(summed.id).status == TaskResultStatus.SUCCESSFUL, 20, "task")
    assert greet.get_result(greeted.id).return_value == "Hello, Ada!"
    done = [*sleepers, extra[1]]
    finished = lambda: [job_hash(client, j).get("status") for j in done] == ["completed"] * 7  # noqa: E731
    wait_for(finished, 40, "every sleeper completed")
    assert job_hash(client, extra[0])["status"] == "failed"
    for job_id in sleepers:
        fields = job_hash(client, job_id)
        expected = ("2", "heir/diagnostics") if job_id in in_flight else ("1", fields["worker_id"])
        assert (fields["attempts"], fields["worker_id"]) == expected
    for queue in QUEUES:
        stream = f"aragora:queue:{{{queue}}}:stream"
        assert client.xlen(stream) == 0
        assert client.xpending(stream, "debate-workers")["pending"] == 0

    check_keys_per_slot(cluster)
    asyncio.run(check_reads(cluster.url, sleepers[0]))


def check_keys_per_slot(cluster: Cluster) -> None:
    """Each queue's keys are on one slot, on one node; the queues are on different masters."""
    node_of_tag: dict[str, set[int]] = {}
    client = cluster.client()
    for port, keys in cluster.keys_by_node().items():
        for key in keys:
            tag = TAG.search(key)
            if tag is None:  # a global key: one key alone, never in a script or MULTI
                assert GLOBAL.fullmatch(key), f"key without hash tag on a cluster: {key}"
                continue
            node_of_tag.setdefault(tag.group(1), set()).add(port)
            assert client.cluster_keyslot(key) == client.cluster_keyslot("{" + tag.group(1) + "}")
    assert all(len(ports) == 1 for ports in node_of_tag.values()), node_of_tag
    assert node_of_tag["diagnostics"] != node_of_tag["tasks"]
    assert len(set().union(*node_of_tag.values())) == 3  # {workers} is on the third master


async def check_reads(url: str, job_id: str) -> None:
    """Status by id alone, scrape-time snapshot and ledger events, all through cluster clients."""
    config = QueueConfig(redis_url=url, queues=frozenset({"debates", *QUEUES}))
    queue = await create_redis_queue(consumer_name="reader", config=config)
    try:
        job = await queue.get_status(job_id)
        assert job is not None and job.queue == "diagnostics" and job.result["slept"] == 2
        reader = LedgerReader(queue.redis, "ledger", config)
        events = await reader.read(count=100, block_ms=100, queue_names=list(QUEUES))
        assert {event.queue for event in events} == set(QUEUES)
    finally:
        await queue.close()
    async with connect(config) as client:
        snapshot = await read_snapshot(client, config)
    counts = {state.queue: state.counts for state in snapshot.queues}
    assert counts["diagnostics"]["completed"] == 7 and counts["diagnostics"]["failed"] == 1
    assert counts["tasks"]["completed"] == 2
    assert {worker["worker_id"] for worker in snapshot.workers} >= {"heir/diagnostics"}


async def test_a_blocked_read_across_slots_returns_with_the_first_entry(cluster: Cluster) -> None:
    config = QueueConfig(redis_url=cluster.url, queues=frozenset({"debates", *QUEUES}))
    queue = await create_redis_queue(consumer_name="c", config=config)
    try:

        async def later() -> str:
            await asyncio.sleep(0.3)
            return await queue.enqueue(Job(payload={}), queue_name="tasks")

        started = time.monotonic()
        jobs, job_id = await asyncio.gather(queue.dequeue_many("w", 5, 5000, list(QUEUES)), later())
        assert [job.id for job in jobs] == [job_id]
        assert time.monotonic() - started < 2.5  # not the 5 s block of the other slot's read
    finally:
        await queue.close()


async def test_a_new_version_deletes_older_libraries_on_every_master(cluster: Cluster) -> None:
    older = SOURCE.replace(LIBRARY, "aragora_0000000000000000")  # another version's code
    for server in cluster.servers:
        with redis.Redis(port=server.port) as node:
            node.function_load(older)
    queue = await create_redis_queue(consumer_name="c", config=QueueConfig(redis_url=cluster.url))
    try:
        for server in cluster.servers:
            with redis.Redis(port=server.port, decode_responses=True) as node:
                listed = [dict(zip(e[::2], e[1::2], strict=True)) for e in node.function_list()]
                assert [entry["library_name"] for entry in listed] == [LIBRARY]
        await queue.enqueue(Job(payload={}), queue_name="tasks")
        assert (await queue.get_queue_stats("tasks"))["pending"] == 1
    finally:
        await queue.close()


async def fail_one_start_two(url: str, queue_name: str) -> tuple[str, list[str]]:
    """Take three jobs of ``queue_name`` as consumer ``inspector``: fail the first (dead
    letter), leave the other two running; return the failed id and the running ids."""
    config = QueueConfig(redis_url=url, queues=frozenset({"debates", *QUEUES}))
    queue = await create_redis_queue(consumer_name="inspector", config=config)
    try:
        jobs: list[Job] = []
        deadline = time.monotonic() + 5
        while len(jobs) < 3 and time.monotonic() < deadline:
            jobs += await queue.dequeue_many("inspector", 3 - len(jobs), 100, [queue_name])
        assert len(jobs) == 3
        await queue.fail(jobs[0].id, "boom: on a cluster")
        return jobs[0].id, [job.id for job in jobs[1:]]
    finally:
        await queue.close()


def inspect_json(env: dict[str, str], *args: str) -> Any:
    """Run ``manage.py queue_inspect ... --json`` as an operator would; return its answer."""
    done = run_inspect(env, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_queue_inspect_reads_queues_on_different_masters(cluster: Cluster, tmp_path: Path) -> None:
    jobs = [Job(payload={"n": n}, metadata={"job_type": "noop"}) for n in range(4)]
    ids = asyncio.run(enqueue_diagnostics(cluster.url, jobs))
    failed, running = asyncio.run(fail_one_start_two(cluster.url, "diagnostics"))
    stream = "aragora:queue:{diagnostics}:stream"
    env = base_env(cluster.url, tmp_path)
    assert run_manage(env, "migrate", "--noinput", "-v0").returncode == 0

    (group,) = inspect_json(env, "groups", "diagnostics")["groups"]
    assert group["stream"] == stream and group["pending"] == 2
    consumers = inspect_json(env, "consumers", "diagnostics")["consumers"]
    assert [(row["consumer"], row["pending"]) for row in consumers] == [("inspector", 2)]
    pending = inspect_json(env, "pending", "diagnostics")
    assert sorted(row["job_id"] for row in pending["oldest deliveries"]) == sorted(running)
    (dead,) = inspect_json(env, "dead", "diagnostics")["dead letters"]
    assert dead["job_id"] == failed and "boom: on a cluster" in dead["error"]
    keys = {row["key"]: row for row in inspect_json(env, "keys", "diagnostics")["keys"]}
    # the failed entry left the stream (dead letter); the other three wait or run
    assert keys[stream]["size"] == 3 and all("{diagnostics}" in key for key in keys)
    job = inspect_json(env, "job", ids[3])["redis"]
    assert job["status"] == "pending" and job["queue"] == "diagnostics"
    assert inspect_json(env, "keys", "tasks")["keys"] == []  # another master
