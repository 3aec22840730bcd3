"""One chaos run, start to finish: processes, traffic, faults, checks, report."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from chaos import report
from chaos.cluster import KEYS, ChaosCluster, until_redis_answers
from chaos.plan import CHAOS_QUEUE, Plan, fault_schedule, job_specs
from chaos.traffic import POLL_SECONDS, Observer, Producer
from chaos.verify import (
    Verdict,
    check_counts,
    check_empty,
    check_fencing,
    check_outcomes,
    check_runs,
    read_runs,
    wait_for_expiry,
)

#: Figures of ``INFO memory`` recorded at the baseline and at the end.
MEMORY_FIGURES = (
    "used_memory",
    "used_memory_peak",
    "used_memory_dataset",
    "used_memory_overhead",
    "used_memory_scripts",
    "mem_clients_normal",
    "mem_aof_buffer",
)
ROOT = Path(__file__).resolve().parents[1]
#: How far above its baseline Redis memory may stay once retention removed every job.
MEMORY_SLACK_BYTES = 1024 * 1024
#: Seconds between the progress lines printed while the run waits for its jobs to finish.
PROGRESS_SECONDS = 10.0


def run(plan: Plan, json_path: Path | None = None) -> int:
    """Run the plan; print the summary table; return 0 when no check found a violation."""
    began = time.monotonic()
    directory = Path(tempfile.mkdtemp(prefix="chaos-"))
    cluster = ChaosCluster(plan, directory)
    try:
        _setup_django(cluster.env)
        figures, violations = _run(plan, cluster, began)
    finally:
        cluster.close()
    figures["duration_seconds"] = round(time.monotonic() - began, 1)
    record = {"plan": _plan_dict(plan), "figures": figures, "violations": violations}
    print(report.table(figures, violations))
    print(f"written: {report.write_json(record, json_path, ROOT)}")
    if violations:
        print(f"worker and Redis logs kept in {directory}")
    else:
        shutil.rmtree(directory, ignore_errors=True)
    return 1 if violations else 0


def _setup_django(env: dict[str, str]) -> None:
    """Configure this process as a producer of the run: the workers' settings and Redis."""
    os.environ.update(env)
    import django

    django.setup()


def progress(began: float, message: str) -> None:
    """Print one stage of the run with its time since the start, at once (a caller that stops
    the run after a timeout still sees how far it got)."""
    print(f"chaos {time.monotonic() - began:6.1f} s: {message}", flush=True)


def _run(plan: Plan, cluster: ChaosCluster, began: float) -> tuple[dict[str, Any], list[str]]:
    cluster.start_workers()
    progress(began, f"{plan.workers} workers registered")
    baseline = _memory(cluster)
    observer, producer = Observer(cluster.redis.url), Producer(job_specs(plan), plan.window)
    observer.start()
    producer.start()
    _strike(plan, cluster)
    producer.join()
    progress(began, f"{len(producer.produced.fates)} jobs enqueued, faults dealt")
    verdict = Verdict()
    _wait_until_finished(plan, cluster, producer, observer, began)
    verdict.figures["finished_seconds"] = round(time.monotonic() - began, 1)
    _check_run(verdict, plan, cluster, producer, observer)
    observer.stop_event.set()
    progress(began, f"checked; waiting up to {plan.retention + 30} s for retention")
    wait_for_expiry(verdict, cluster.client, plan.retention + 30)
    end = _memory(cluster)
    verdict.figures.update(memory_baseline=baseline, memory_end=end, keys_left=_keys(cluster))
    used, base = end["used_memory"], baseline["used_memory"]
    verdict.check(used <= base + MEMORY_SLACK_BYTES, f"memory {used} > baseline {base}")
    progress(began, "stopping the workers")
    codes = cluster.stop_workers()
    verdict.figures["exit_codes"] = codes
    verdict.check(set(codes.values()) == {0}, f"workers did not exit 0 at SIGTERM: {codes}")
    return verdict.figures, verdict.violations


def _strike(plan: Plan, cluster: ChaosCluster) -> None:
    """Deal the faults at their times (freezes run beside the others, in their own threads)."""
    began = time.monotonic()
    freezes = []
    for fault in fault_schedule(plan):
        time.sleep(max(0.0, began + fault.at - time.monotonic()))
        if fault.kind == "kill":
            cluster.kill_worker(fault.slot)
        elif fault.kind == "redis":
            cluster.kill_redis()
        else:
            freeze = threading.Thread(target=cluster.freeze_worker, args=(fault.slot,))
            freeze.start()
            freezes.append(freeze)
    for freeze in freezes:
        freeze.join()


def _wait_until_finished(
    plan: Plan, cluster: ChaosCluster, producer: Producer, observer: Observer, began: float
) -> None:
    """Wait until every job that was enqueued is seen finished and nothing waits or runs;
    say every PROGRESS_SECONDS how many are not."""
    deadline = time.monotonic() + plan.claim_idle_ms / 1000 * 6 + 120
    waiting = [KEYS.index(CHAOS_QUEUE, s) for s in ("pending", "processing", "retrying")]
    next_report = time.monotonic() + PROGRESS_SECONDS
    while time.monotonic() < deadline:
        unseen = sum(job_id not in observer.finals for job_id in producer.produced.fates)
        busy = until_redis_answers(lambda: sum(cluster.client.zcard(k) for k in waiting))
        if not unseen and busy == 0:
            time.sleep(2 * POLL_SECONDS)  # the observer reads the last ones
            progress(began, "every job finished")
            return
        if time.monotonic() >= next_report:
            progress(began, f"{unseen} jobs not seen finished, {busy} waiting or running")
            next_report += PROGRESS_SECONDS
        time.sleep(0.5)
    progress(began, "gave up waiting for the jobs to finish")


def _check_run(
    verdict: Verdict,
    plan: Plan,
    cluster: ChaosCluster,
    producer: Producer,
    observer: Observer,
) -> None:
    produced, finals, faults = producer.produced, observer.finals, cluster.faults
    check_outcomes(verdict, produced, finals)
    check_runs(verdict, produced, read_runs(cluster.client), faults)
    check_fencing(verdict, produced, finals, faults)
    check_counts(verdict, cluster.client, plan.retention)
    check_empty(verdict, cluster.client)
    fenced = sum(
        cluster.workers.log_path(worker_id).read_text(errors="replace").count("job.fenced")
        for worker_id in faults.stopped_jobs
    )
    verdict.figures.update(
        fenced_outcomes=fenced,
        kills=len(faults.killed_in_flight),
        stops=len(faults.stopped_seconds),
        redis_restarts=len(faults.redis_down_seconds),
        stopped_seconds=faults.stopped_seconds,
        redis_down_seconds=faults.redis_down_seconds,
        enqueue_seconds=produced.seconds,
    )


def _memory(cluster: ChaosCluster) -> dict[str, int]:
    """Return Redis memory figures: the total and where it goes."""
    info = until_redis_answers(lambda: cluster.client.info("memory"))
    return {name: int(info[name]) for name in MEMORY_FIGURES}


def _keys(cluster: ChaosCluster) -> dict[str, str]:
    """Return the keys left at the end: type and bytes (a handful: the queue's bounded ones)."""
    names = sorted(cluster.client.scan_iter(count=1000))[:50]
    client = cluster.client
    return {name: f"{client.type(name)} {client.memory_usage(name, samples=0)}" for name in names}


def _plan_dict(plan: Plan) -> dict[str, Any]:
    return {name: getattr(plan, name) for name in plan.__dataclass_fields__}
