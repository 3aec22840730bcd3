"""The checks of a chaos run: each returns its figures and adds any violation it finds."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis

from chaos.cluster import GROUP, KEYS, STREAM, FaultLog
from chaos.plan import CHAOS_QUEUE, EXPECTED_RUNS, FAILED_ONCE_KEY, PERMANENT_FAILURE, RUNS_KEY
from chaos.traffic import Final, Produced

STATUSES = ("pending", "processing", "retrying", "completed", "failed", "cancelled")
#: Jobs finished less than this long before their expiry are left out of the count check.
EXPIRY_MARGIN_MS = 2000

#: One frozen moment (no key expires while a script runs). ARGV: the job key prefix, the queue,
#: a window in ms, then (status, index key) pairs. Per status it returns: the index size, the
#: hashes in that status, those of them missing from the index, and the index members younger
#: than the window whose hash is not in that status (older ones are expiring: retention
#: removes the hash and the next promotion prunes the member, not at the same instant).
SNAPSHOT_LUA = """
local prefix, queue, window = ARGV[1], ARGV[2], tonumber(ARGV[3])
local t = redis.call('TIME')
local cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - window
local index, stats, order = {}, {}, {}
for i = 4, #ARGV, 2 do
  index[ARGV[i]] = ARGV[i + 1]
  stats[ARGV[i]] = {0, 0, 0}
  order[#order + 1] = ARGV[i]
end
local cursor = '0'
repeat
  local r = redis.call('SCAN', cursor, 'MATCH', prefix .. '*', 'COUNT', 1000)
  cursor = r[1]
  for _, key in ipairs(r[2]) do
    local h = redis.call('HMGET', key, 'status', 'queue', 'id')
    local s = stats[h[1]]
    if h[2] == queue and s then
      s[1] = s[1] + 1
      if not redis.call('ZSCORE', index[h[1]], h[3]) then s[2] = s[2] + 1 end
    end
  end
until cursor == '0'
local out = {}
for _, status in ipairs(order) do
  local key = index[status]
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', key, '(' .. cutoff, '+inf')) do
    if redis.call('HGET', prefix .. id, 'status') ~= status then
      stats[status][3] = stats[status][3] + 1
    end
  end
  local s = stats[status]
  out[#out + 1] = {status, redis.call('ZCARD', key), s[1], s[2], s[3]}
end
return out
"""


@dataclass(slots=True)
class Verdict:
    """Figures of the checks and the violations found."""

    figures: dict[str, Any] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def check(self, ok: bool, message: str) -> None:
        """Record ``message`` as a violation unless ``ok``."""
        if not ok:
            self.violations.append(message)


def check_outcomes(verdict: Verdict, produced: Produced, finals: dict[str, Final]) -> None:
    """Every enqueue that returned reached the final state its fate designed."""
    lost = [job_id for job_id in produced.fates if job_id not in finals]
    wrong = []
    for job_id, fate in produced.fates.items():
        final = finals.get(job_id)
        if final is None:
            continue
        designed = "failed" if fate == "fail_always" else "completed"
        bad_error = designed == "failed" and PERMANENT_FAILURE not in final.error
        if final.status != designed or bad_error:
            wrong.append(job_id)
    statuses = Counter(finals[j].status for j in produced.fates if j in finals)
    fates = Counter(produced.fates.values())
    verdict.figures.update(
        enqueued=len(produced.fates),
        enqueue_errors=produced.errors,
        lost=len(lost),
        completed=statuses["completed"],
        completed_designed=fates["ok"] + fates["fail_once"],
        failed=statuses["failed"],
        failed_designed=fates["fail_always"],
        not_as_designed=len(wrong),
    )
    verdict.check(not lost, f"lost: {len(lost)} jobs never reached a final state: {lost[:5]}")
    verdict.check(not wrong, f"{len(wrong)} jobs did not end as designed: {wrong[:5]}")


def check_runs(
    verdict: Verdict, produced: Produced, runs: dict[str, int], faults: FaultLog
) -> None:
    """Extra runs are at most the jobs in flight on killed or frozen workers (or Redis)."""
    duplicates = under = 0
    for job_id, fate in produced.fates.items():
        extra = runs.get(job_id, 0) - EXPECTED_RUNS[fate]
        duplicates += max(extra, 0)
        under += extra < 0
    unknown = len(runs.keys() - produced.fates.keys())
    workers_bound = sum(faults.killed_in_flight) + sum(map(len, faults.stopped_jobs.values()))
    bound = workers_bound + sum(faults.redis_in_flight)
    verdict.figures.update(
        duplicates=duplicates,
        in_flight_killed=sum(faults.killed_in_flight),
        in_flight_stopped=sum(map(len, faults.stopped_jobs.values())),
        in_flight_redis=sum(faults.redis_in_flight),
        duplicates_bound=bound,
        runs_of_unreturned_enqueues=unknown,
    )
    verdict.check(duplicates <= bound, f"duplicates {duplicates} > in-flight bound {bound}")
    verdict.check(under == 0, f"{under} jobs ran fewer times than their fate needs")
    verdict.check(unknown <= produced.errors, f"{unknown} runs of jobs never enqueued")


def check_fencing(
    verdict: Verdict, produced: Produced, finals: dict[str, Final], faults: FaultLog
) -> None:
    """Each stored result is its last owner's; frozen workers' jobs were finished by others."""
    completed = [finals[j] for j in produced.fates if j in finals]
    foreign = [f for f in completed if f.status == "completed" and f.result_worker != f.worker_id]
    kept = [
        job_id
        for worker_id, job_ids in faults.stopped_jobs.items()
        for job_id in job_ids
        if job_id in finals
        and worker_id in {finals[job_id].worker_id, finals[job_id].result_worker}
    ]
    verdict.figures.update(results_not_of_owner=len(foreign), frozen_results_kept=len(kept))
    verdict.check(not foreign, f"{len(foreign)} stored results are not their owner's")
    verdict.check(not kept, f"{len(kept)} jobs of frozen workers kept the frozen worker's result")


def check_counts(verdict: Verdict, client: redis.Redis, retention: int) -> None:
    """Status counts equal a scan of the job hashes, read at one frozen moment."""
    window = retention * 1000 - EXPIRY_MARGIN_MS
    pairs = [part for s in STATUSES for part in (s, KEYS.index(CHAOS_QUEUE, s))]
    rows = client.eval(SNAPSHOT_LUA, 0, KEYS.job(""), CHAOS_QUEUE, window, *pairs)
    table = {status: [int(n) for n in numbers] for status, *numbers in rows}
    verdict.figures["counts_vs_scan"] = {
        s: dict(zip(("counted", "hashes", "unindexed", "unbacked"), n, strict=True))
        for s, n in table.items()
    }
    for status, (counted, hashes, unindexed, unbacked) in table.items():
        verdict.check(unindexed == 0, f"{status}: {unindexed} job hashes missing from its count")
        verdict.check(unbacked == 0, f"{status}: {unbacked} counted jobs without that status")
        verdict.check(hashes <= counted, f"{status}: {hashes} hashes but counted {counted}")
    for status in ("pending", "processing", "retrying"):
        verdict.check(table[status][:2] == [0, 0], f"{status} jobs left: {table[status]}")


def check_empty(verdict: Verdict, client: redis.Redis) -> None:
    """Streams, pending lists and the delayed set hold nothing once every job finished."""
    left = {
        "stream": client.xlen(STREAM),
        "pending_entries": client.xpending(STREAM, GROUP)["pending"],
        "delayed": client.zcard(KEYS.delayed(CHAOS_QUEUE)),
    }
    verdict.figures["left_in_queue"] = left
    verdict.check(not any(left.values()), f"the queue is not empty: {left}")


def read_runs(client: redis.Redis) -> dict[str, int]:
    """Return the run counts of the chaos jobs, then delete the run keys (before the memory
    check: they are the run's, not the queue's)."""
    runs = {job_id: int(n) for job_id, n in client.hgetall(RUNS_KEY).items()}
    client.delete(RUNS_KEY, FAILED_ONCE_KEY)
    return runs


def wait_for_expiry(verdict: Verdict, client: redis.Redis, seconds: float) -> None:
    """Wait until retention removed every job hash and pruned the indexes; check it did."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = _leftovers(client)
        if not any(left.values()):
            break
        time.sleep(1.0)
    verdict.figures["left_after_retention"] = left
    verdict.check(not any(left.values()), f"retention left keys behind: {left}")


def _leftovers(client: redis.Redis) -> dict[str, int]:
    jobs = sum(1 for _ in client.scan_iter(match=KEYS.job("*"), count=1000))
    indexed = sum(client.zcard(KEYS.index(CHAOS_QUEUE, s)) for s in STATUSES)
    return {"job_hashes": jobs, "indexed": indexed, "dead": client.zcard(KEYS.dead(CHAOS_QUEUE))}
