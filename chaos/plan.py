"""What a chaos run does: its size, its jobs' fates and durations, and its fault schedule."""

from __future__ import annotations

import random
from dataclasses import dataclass

#: The Django task queue (and Redis queue) of the chaos jobs.
CHAOS_QUEUE = "chaos"
#: Hash: job id -> how many times a handler started the job.
RUNS_KEY = "chaos:runs"
#: Hash: job id -> 1 once its one designed failure happened.
FAILED_ONCE_KEY = "chaos:failed-once"
#: Fates of chaos jobs and how many runs each needs when no fault strikes.
EXPECTED_RUNS = {"ok": 1, "fail_once": 2, "fail_always": 1}
#: Text of the designed permanent failure.
PERMANENT_FAILURE = "chaos: failing for good on purpose"
#: Share of jobs designed to fail once (then succeed) and to fail for good.
FAIL_ONCE_SHARE = 0.05
FAIL_ALWAYS_SHARE = 0.03
#: Longest designed job duration in milliseconds.
MAX_MILLIS = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """The size of a chaos run and its faults."""

    jobs: int = 20_000
    workers: int = 4
    concurrency: int = 16
    #: Worker SIGKILLs (each worker is restarted under a new id shortly after).
    kills: int = 8
    #: Workers frozen (SIGSTOP) until their jobs are taken over, then woken (SIGCONT).
    stops: int = 1
    #: redis-server SIGKILLs, each followed by a restart on the same port and AOF.
    redis_restarts: int = 2
    #: Seconds over which the jobs are enqueued and the faults strike.
    window: float = 100.0
    #: Seconds finished jobs are kept (``retention_seconds`` of the workers).
    retention: int = 60
    claim_idle_ms: int = 10_000
    seed: int = 11


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault: ``kind`` (kill, stop, redis) at ``at`` seconds into the window, on ``slot``."""

    at: float
    kind: str
    slot: int = -1


def job_specs(plan: Plan) -> list[tuple[int, str]]:
    """Return (millis, fate) of every job of the run, drawn from the plan's seed."""
    rng = random.Random(plan.seed)
    specs = []
    for _ in range(plan.jobs):
        roll = rng.random()
        if roll < FAIL_ALWAYS_SHARE:
            fate = "fail_always"
        elif roll < FAIL_ALWAYS_SHARE + FAIL_ONCE_SHARE:
            fate = "fail_once"
        else:
            fate = "ok"
        specs.append((rng.randint(0, MAX_MILLIS), fate))
    return specs


def fault_schedule(plan: Plan) -> list[Fault]:
    """Return the faults of the run in time order: kills spread over the window, the freezes
    early (their takeover takes ``claim_idle_ms``), the Redis kills in its second half."""
    rng = random.Random(plan.seed + 1)
    w = plan.window
    faults = [
        Fault(rng.uniform(0.05, 0.9) * w, "kill", rng.randrange(plan.workers))
        for _ in range(plan.kills)
    ]
    faults += [
        Fault(rng.uniform(0.1, 0.3) * w, "stop", rng.randrange(plan.workers))
        for _ in range(plan.stops)
    ]
    for number in range(plan.redis_restarts):
        start = 0.4 + 0.45 * number / max(plan.redis_restarts, 1)
        faults.append(Fault(rng.uniform(start, start + 0.1) * w, "redis"))
    return sorted(faults, key=lambda fault: fault.at)
