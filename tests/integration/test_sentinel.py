"""Redis Sentinel failover under load: one master, one replica, three Sentinels on loopback.

A thread enqueues ``noop`` jobs through a ``redis+sentinel://`` URL and records every enqueue
that was acknowledged; a ``manage.py queue_worker`` process runs them. The master is killed
with SIGKILL: the Sentinels promote the replica, the worker and the enqueuing client follow it,
and the jobs enqueued after the failover complete. Each run prints how many acknowledged
enqueues the new master lacks (lost); with ``enqueue_replicas=1`` (WAIT) none may be. A second
scenario partitions the replica from the master just before the crash, so that the master
acknowledges writes its replica never gets (what WAIT guards against).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis

from queue_app.queue import (
    EnqueueNotReplicated,
    Job,
    QueueConfig,
    QueueConnectionError,
    RedisStreamsQueue,
)
from tests.api_support import JOBS, debate, make_user, token_client
from tests.process_support import WorkerProcesses, wait_for
from tests.sentinel_support import SentinelSet

if TYPE_CHECKING:
    from django.test import Client
    from pytest_django.fixtures import SettingsWrapper

#: Pause between two enqueues (the worker must keep up on a shared 2-core machine).
PACE_SECONDS = 0.002


class Enqueuer(threading.Thread):
    """Enqueue ``noop`` jobs one by one until stopped; record what Redis acknowledged."""

    def __init__(self, config: QueueConfig) -> None:
        super().__init__(name="enqueuer", daemon=True)
        self.config = config
        #: (monotonic time of the acknowledgement, job id) of every acknowledged enqueue.
        self.acked: list[tuple[float, str]] = []
        #: Enqueues refused with ``EnqueueNotReplicated`` / with another connection error.
        self.unreplicated = 0
        self.unreachable = 0
        #: The last refusal's error, for a failure's message.
        self.last_refusal = ""
        self.crash: BaseException | None = None
        self._stopping = threading.Event()

    def run(self) -> None:
        try:
            asyncio.run(self._enqueue())
        except BaseException as error:  # reported by the test, never lost in the thread
            self.crash = error

    async def _enqueue(self) -> None:
        queue = RedisStreamsQueue.from_config(self.config, "enqueuer")
        try:
            while not self._stopping.is_set():
                job = Job(payload={}, metadata={"job_type": "noop"})
                try:
                    await queue.enqueue(job)
                except EnqueueNotReplicated as error:
                    self.unreplicated += 1
                    self.last_refusal = str(error)
                except QueueConnectionError as error:
                    self.unreachable += 1
                    self.last_refusal = str(error)
                    await asyncio.sleep(0.05)
                else:
                    self.acked.append((time.monotonic(), job.id))
                await asyncio.sleep(PACE_SECONDS)
        finally:
            await queue.close()

    def calls(self) -> int:
        """Return how many enqueues were answered (acknowledged or refused as unreplicated)."""
        return len(self.acked) + self.unreplicated

    def wait_for_acks(self, count: int, seconds: float, what: str) -> None:
        """Wait until ``count`` enqueues were acknowledged; fail at once if the thread crashed."""

        def done() -> bool:
            if self.crash is not None:
                raise AssertionError(f"the enqueuer crashed: {self.crash!r}")
            return len(self.acked) >= count

        try:
            wait_for(done, seconds, what)
        except AssertionError as error:
            raise AssertionError(f"{error} ({self.summary()})") from None

    def summary(self) -> str:
        """Return the counts and the last refusal, for a failure's message."""
        return (
            f"{len(self.acked)} acknowledged, {self.unreplicated} not replicated, "
            f"{self.unreachable} unreachable, last refusal: {self.last_refusal or 'none'}"
        )

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=10)


def statuses(port: int, ids: list[str]) -> list[str]:
    """Return the status of each job on the server at ``port`` ("" when it has no such job)."""
    with redis.Redis(port=port, decode_responses=True) as client, client.pipeline() as pipe:
        for job_id in ids:
            pipe.hget(f"aragora:queue:job:{job_id}", "status")
        return [status or "" for status in pipe.execute()]


def fail_over_under_load(
    cluster: SentinelSet, workers: WorkerProcesses, enqueuer: Enqueuer, link_lost: bool
) -> int:
    """Kill the master mid-load; return how many acknowledged enqueues the new master lacks.

    With ``link_lost`` the replica is partitioned from the master just before the crash.
    """
    cluster.wait_until_monitored()
    workers.start("survivor", "--concurrency", "20")
    enqueuer.start()
    enqueuer.wait_for_acks(150, 20, "150 acknowledged enqueues")
    if link_lost:
        cluster.cut_replication()
        calls = enqueuer.calls()
        wait_for(lambda: enqueuer.calls() >= calls + 20, 10, "20 enqueues while the link is down")
    cluster.kill_master()
    new_master = cluster.wait_for_failover()
    # Later acknowledgements came from the new master (the old one acknowledged none after its
    # death, but one it sent just before may be recorded a moment later by a slow thread).
    promoted_at = time.monotonic()
    if enqueuer.config.enqueue_replicas:
        # The promoted replica has no replica of its own: nothing can be acknowledged.
        wait_for(lambda: enqueuer.unreplicated, 10, "an enqueue refused for want of a replica")
        cluster.restart_old_master_as_replica()
    acked = len(enqueuer.acked)
    # With a replica to wait for, the restarted old master first resyncs in full: slow on a
    # loaded machine (once over 20 s with two suites and callgrind running beside it).
    try:
        enqueuer.wait_for_acks(acked + 100, 45, "enqueues after the failover")
    except AssertionError as error:
        raise AssertionError(f"{error}; {cluster.replication()}") from None
    enqueuer.stop()
    assert enqueuer.crash is None, enqueuer.crash
    ids = [job_id for _, job_id in enqueuer.acked]
    after = [job_id for at, job_id in enqueuer.acked if at > promoted_at]
    lost = statuses(new_master, ids).count("")
    try:
        wait_for(lambda: set(statuses(new_master, after)) == {"completed"}, 30, "completions")
    except AssertionError:
        counts = Counter(statuses(new_master, after))
        raise AssertionError(f"jobs enqueued after the failover, by status: {counts}") from None
    assert workers.processes[0].poll() is None, "the worker survived the failover"
    return lost


@pytest.mark.timeout(120)
@pytest.mark.parametrize("link_lost", [False, True], ids=["crash", "crash-after-partition"])
@pytest.mark.parametrize("replicas", [0, 1], ids=["without-wait", "with-wait"])
def test_failover_loses_no_acknowledged_enqueue_with_wait(
    replicas: int, link_lost: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = SentinelSet(tmp_path)
    workers = WorkerProcesses(cluster.url, tmp_path)
    config = QueueConfig(
        redis_url=cluster.url, default_queue="diagnostics", enqueue_replicas=replicas
    )
    enqueuer = Enqueuer(config)
    try:
        lost = fail_over_under_load(cluster, workers, enqueuer, link_lost)
    finally:
        if enqueuer.is_alive():
            enqueuer.stop()
        workers.stop_all()
        cluster.stop()
    with capsys.disabled():
        print(
            f"\nsentinel failover, enqueue_replicas={replicas}, partition first: {link_lost}: "
            f"{lost} of "
            f"{len(enqueuer.acked)} acknowledged enqueues lost; refused: "
            f"{enqueuer.unreplicated} not replicated, {enqueuer.unreachable} unreachable"
        )
    if replicas:
        assert lost == 0


def web_sees_queue(client: Client, pending: int) -> None:
    """Check that /readyz answers 200 and /metrics counts ``pending`` debate jobs."""
    ready = client.get("/readyz")
    assert (ready.status_code, ready.json()["checks"]["redis"]) == (200, "ok")
    metrics = client.get("/metrics").content.decode()
    assert "aragora_queue_redis_up 1.0" in metrics
    assert f'aragora_queue_jobs{{queue="debates",status="pending"}} {pending}.0' in metrics


@pytest.mark.django_db
def test_web_enqueues_probes_and_scrapes_through_sentinel(
    client: Client, settings: SettingsWrapper, tmp_path: Path
) -> None:
    cluster = SentinelSet(tmp_path)
    try:
        settings.REDIS_URL = cluster.url
        api = token_client(make_user("alice", "acme"))
        assert api.post(JOBS, debate(), format="json").status_code == 201
        web_sees_queue(client, 1)
        cluster.wait_until_monitored()
        cluster.kill_master()
        cluster.wait_for_failover()
        wait_for(lambda: client.get("/readyz").status_code == 200, 10, "ready again")
        # The first job was copied to the promoted replica; the API enqueues on it.
        wait_for(lambda: api.post(JOBS, debate(), format="json").status_code == 201, 10, "201")
        web_sees_queue(client, 2)
    finally:
        cluster.stop()
