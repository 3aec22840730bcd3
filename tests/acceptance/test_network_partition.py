"""A network partition: two worker hosts in their own network namespaces, one cut off mid-job.

Each host is a network namespace joined to the test's by a veth pair on 10.200.x.x; Redis
listens on the two host-side addresses only. The cut-off host's jobs are taken over by the
other once idle past ``claim_idle_ms``; when its link comes back, the outcomes it wrote late
are refused (fencing) and the stored results stay the survivor's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis

from tests.process_support import RedisServer, WorkerProcesses, wait_for

if TYPE_CHECKING:
    from pytest_django.fixtures import SettingsWrapper

pytestmark = pytest.mark.timeout(180)

#: Settings of the chaos task queue (as chaos.settings has them), for enqueueing chaos jobs.
CHAOS_TASKS = {
    "default": {
        "BACKEND": "queue_app.tasks.backend.RedisStreamsTaskBackend",
        "QUEUES": ["default", "chaos"],
    }
}
WORKER_ENV = {
    "DJANGO_SETTINGS_MODULE": "chaos.settings",
    "ARAGORA_QUEUE_CLAIM_IDLE_MS": "10000",
    "ARAGORA_QUEUE_SOCKET_TIMEOUT": "2",
    "ARAGORA_QUEUE_CONNECT_TIMEOUT": "1",
    "ARAGORA_QUEUE_LEDGER_MAXLEN": "0",
}
JOB_MILLIS = 4000


@dataclass(frozen=True, slots=True)
class Host:
    """A worker host: a network namespace and the veth pair joining it to the test's."""

    namespace: str
    #: The veth end outside (in the test's namespace) and its address, where Redis listens.
    outside: str
    redis_address: str
    #: The veth end inside the namespace and its address.
    inside: str
    address: str

    @property
    def prefix(self) -> list[str]:
        """Return the command prefix that runs a program on this host."""
        return ["ip", "netns", "exec", self.namespace]


def ip(*args: str) -> None:
    """Run ``ip`` with ``args``; raise with its message when it fails."""
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


def add_host(tag: str, number: int) -> Host:
    """Create host ``number``: its namespace, its veth pair, their addresses, links up."""
    third = os.getpid() % 250
    host = Host(
        namespace=f"aragora-{tag}-{number}",
        outside=f"ar{tag}o{number}",
        redis_address=f"10.200.{third}.{4 * number + 1}",
        inside=f"ar{tag}i{number}",
        address=f"10.200.{third}.{4 * number + 2}",
    )
    ip("netns", "add", host.namespace)
    ip("link", "add", host.outside, "type", "veth", "peer", "name", host.inside)
    ip("link", "set", host.inside, "netns", host.namespace)
    ip("addr", "add", f"{host.redis_address}/30", "dev", host.outside)
    ip("link", "set", host.outside, "up")
    inside = [*host.prefix, "ip"]
    for args in (
        ["addr", "add", f"{host.address}/30", "dev", host.inside],
        ["link", "set", host.inside, "up"],
        ["link", "set", "lo", "up"],
    ):
        subprocess.run([*inside, *args], check=True, capture_output=True, timeout=10)
    return host


def remove_host(host: Host) -> None:
    """Delete the host's veth pair and namespace (whatever of them exists)."""
    for args in (["link", "del", host.outside], ["netns", "del", host.namespace]):
        subprocess.run(["ip", *args], check=False, capture_output=True, timeout=10)


@contextmanager
def worker_hosts(count: int) -> Iterator[list[Host]]:
    """Create ``count`` hosts; remove them all at the end. Skip where that is not allowed."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2 (ip netns add)")
    tag = str(os.getpid() % 100_000)
    hosts: list[Host] = []
    try:
        for number in range(count):
            try:
                hosts.append(add_host(tag, number))
            except subprocess.CalledProcessError as error:
                remove_host(Host(f"aragora-{tag}-{number}", f"ar{tag}o{number}", "", "", ""))
                pytest.skip(f"the kernel refused a network namespace or veth: {error.stderr}")
        yield hosts
    finally:
        for host in hosts:
            remove_host(host)


def job(client: redis.Redis, job_id: str) -> dict[str, str]:
    return client.hgetall(f"aragora:queue:job:{job_id}")


def fenced_ids(log: Path) -> set[str]:
    """Return the job ids of the ``job.fenced`` lines of a worker's JSON log."""
    found = set()
    for line in log.read_text(errors="replace").splitlines():
        if "job.fenced" in line and line.startswith("{"):
            found.add(json.loads(line).get("job_id", ""))
    return found


def test_partitioned_worker_is_taken_over_and_its_late_outcomes_are_fenced(
    tmp_path: Path,
    settings: SettingsWrapper,
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    with worker_hosts(2) as (cut, survivor):
        server = redis_server_factory(host=survivor.redis_address, also_bind=[cut.redis_address])
        client = redis.Redis.from_url(server.url, decode_responses=True)
        settings.REDIS_URL, settings.TASKS = server.url, CHAOS_TASKS
        from chaos.tasks import chaos_job

        ids = [chaos_job.enqueue(millis=JOB_MILLIS, fate="ok").id for _ in range(2)]
        workers = WorkerProcesses(server.url, tmp_path, queues="chaos", env=WORKER_ENV)
        try:
            run_partition(workers, client, ids, cut, survivor, server.port)
        finally:
            workers.stop_all()


def run_partition(
    workers: WorkerProcesses,
    client: redis.Redis,
    ids: list[str],
    cut: Host,
    survivor: Host,
    port: int,
) -> None:
    def url(host: Host) -> str:
        return f"redis://{host.redis_address}:{port}/0"

    def held_by_a() -> bool:
        # Taken by host-a and its handlers started (each counted its run) before the cut.
        taken = [job(client, i).get("worker_id") for i in ids] == ["host-a"] * 2
        return taken and client.hmget("chaos:runs", ids) == ["1", "1"]

    def done() -> bool:
        return all(job(client, i).get("status") == "completed" for i in ids)

    doomed = workers.start("host-a", "--concurrency", "2", prefix=cut.prefix, redis_url=url(cut))
    wait_for(held_by_a, 60, "host-a running both jobs")
    workers.start("host-b", "--concurrency", "2", prefix=survivor.prefix, redis_url=url(survivor))
    ip("link", "set", cut.outside, "down")

    wait_for(done, 90, "host-b finishing the jobs of host-a")
    finished = {i: job(client, i) for i in ids}
    for fields in finished.values():
        assert fields["worker_id"] == "host-b" and fields["attempts"] == "2"
        assert json.loads(fields["result"]) == {"worker": "host-b"}
    assert client.hmget("chaos:runs", ids) == ["2", "2"], "each job ran on both hosts"

    ip("link", "set", cut.outside, "up")
    log = workers.log_path("host-a")
    wait_for(lambda: fenced_ids(log) == set(ids), 60, "host-a's late outcomes refused")
    assert {i: job(client, i) for i in ids} == finished, "the survivor's results stand"
    assert doomed.poll() is None, "the cut-off worker survives the partition"
    assert client.xpending("aragora:queue:chaos:stream", "debate-workers")["pending"] == 0
