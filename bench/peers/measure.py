"""One repetition of one system: the timed phases of the table, against the private Redis.

Every phase starts from an empty Redis (FLUSHALL) and counts finished jobs with the counter
of ``shape``, polled every ``POLL`` seconds from this process.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from dataclasses import dataclass

import redis

from peers import procs, shape
from peers.systems import System

POLL = 0.002
#: Seconds the worker waits, after its warm-up job, before its memory is read.
SETTLE = 1.0


@dataclass(frozen=True, slots=True)
class Plan:
    """The sizes of a run."""

    #: Jobs pre-enqueued for the throughput phases (and enqueued one by one, timed).
    jobs: int
    #: Jobs enqueued at ``rate`` per second for the pickup latency.
    samples: int
    rate: float = 100.0
    #: Seconds a throughput phase counts finished jobs for: workers still busy then are rated
    #: on the jobs done so far (``jobs_counted`` in the JSON), which bounds a run's length.
    budget: float = 60.0
    #: Seconds a wait may take (start-up, latency samples) before the repetition fails.
    timeout: float = 300.0


class Phases:
    """Run the phases of one repetition of a system; each returns its figures."""

    def __init__(self, env: procs.Environment, plan: Plan, system: System) -> None:
        self.env, self.plan, self.system = env, plan, system
        self.redis = redis.Redis.from_url(env.redis_url)

    def run(self) -> dict[str, float]:
        """Return every figure of this system's row for one repetition."""
        figures = self.enqueue_and_work()
        if self.system.bulk:
            figures.update(self.bulk_and_two_processes())
        figures.update(self.idle_and_latency())
        return figures

    def enqueue_and_work(self) -> dict[str, float]:
        """Enqueue the jobs one by one (timed), then time one worker process through them."""
        self.redis.flushall()
        seconds = procs.produce(self.env, self.system, self.plan.jobs)
        return {"enqueue_per_s": self.plan.jobs / seconds, **self.work(processes=1)}

    def bulk_and_two_processes(self) -> dict[str, float]:
        """Enqueue the jobs with ``enqueue_many`` (timed), then time two worker processes."""
        self.redis.flushall()
        seconds = procs.produce(self.env, self.system, self.plan.jobs, "--bulk")
        two = self.work(processes=2)
        return {
            "enqueue_many_per_s": self.plan.jobs / seconds,
            "two_procs_per_s": two["jobs_per_s"],
        }

    def work(self, processes: int) -> dict[str, float]:
        """Start ``processes`` workers on the waiting jobs; return jobs/s and startup seconds.

        The rate runs from the first finished job to the last, so that process start-up (import
        time) is reported apart, as ``startup_s``.
        """
        started = time.perf_counter()
        workers = [procs.start_worker(self.env, self.system, i) for i in range(processes)]
        try:
            first_at, first_count = self._wait_for(1, workers)
            cpu_before = self._cpu(workers)
            done_at, done = self._wait_for(self.plan.jobs, workers, self.plan.budget)
            cpu_after = self._cpu(workers)
        finally:
            for worker in workers:
                procs.stop_worker(worker)
        counted = done - first_count
        per_job = 1e6 / max(counted, 1)
        spent = zip(cpu_before, cpu_after, strict=True)
        worker_cpu, redis_cpu = ((b - a) * per_job for a, b in spent)
        return {
            "jobs_per_s": counted / max(done_at - first_at, 1e-9),
            "startup_s": first_at - started,
            "jobs_counted": counted,
            "worker_cpu_us": worker_cpu,
            "redis_cpu_us": redis_cpu,
        }

    def _cpu(self, workers: list[subprocess.Popen[bytes]]) -> tuple[float, float]:
        """Return the CPU seconds used so far by the workers (and their children) and by Redis."""
        info = self.redis.info("cpu")
        redis_cpu = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        return sum(procs.cpu_seconds(worker.pid) for worker in workers), redis_cpu

    def idle_and_latency(self) -> dict[str, float]:
        """Read an idle worker's memory, then its pickup latency at ``rate`` jobs/s."""
        self.redis.flushall()
        worker = procs.start_worker(self.env, self.system)
        try:
            procs.produce(self.env, self.system, 1)
            self._wait_for(1, [worker])
            time.sleep(SETTLE)
            memory = procs.memory_mib(worker.pid)
            rate = str(self.plan.rate)
            procs.produce(self.env, self.system, self.plan.samples, "--rate", rate)
            self._wait_for(1 + self.plan.samples, [worker])
        finally:
            procs.stop_worker(worker)
        latencies = sorted(float(x) for x in self.redis.lrange(shape.LATENCIES, 0, -1))
        return {
            "idle_memory_mib": memory,
            "latency_p50_ms": statistics.median(latencies) * 1000,
            "latency_p99_ms": percentile(latencies, 0.99) * 1000,
        }

    def _wait_for(
        self, count: int, workers: list[subprocess.Popen[bytes]], budget: float | None = None
    ) -> tuple[float, int]:
        """Poll the counter until it reaches ``count``; return when, and the count seen then.

        With a ``budget`` (seconds), return the count reached when it runs out; without one,
        fail after ``Plan.timeout``.
        """
        deadline = time.perf_counter() + (budget or self.plan.timeout)
        while True:
            seen, now = int(self.redis.get(shape.COUNTER) or 0), time.perf_counter()
            if seen >= count or (budget and now >= deadline):
                return now, seen
            if now >= deadline:
                break
            if any(worker.poll() is not None for worker in workers):
                break
            time.sleep(POLL)
        raise procs.RunFailed(procs.worker_failure(self.env, self.system, workers[0]))


def percentile(ordered: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of an ascending list."""
    rank = max(1, round(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]
