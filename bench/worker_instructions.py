"""Count the instructions a worker process spends per job (callgrind), for A/Bs on a noisy VM.

Wall-clock jobs/s on a shared VM moves by tens of percent between runs of the same code; the
instructions a process executes do not. For each system (bench-peers' rows: its worker command
and producer), on a private Redis: enqueue ``--low`` jobs, run the worker under
``valgrind --tool=callgrind`` until they are done, stop it; again with ``--high`` jobs; print
``(I(high) - I(low)) / (high - low)``: start-up, idle polling and shutdown cancel out. Repeats of
one code agree within about 2%. The floor acknowledges an entry whose job failed, and under
callgrind some of its jobs' ``INCR`` can fail: its row is then "not counted" (seen twice in
three runs). The ``tasks`` row is ``queue_worker --queues tasks`` as
bench-peers runs it, so its count includes the ledger events it drains in the process. Only the
worker process is counted, not Redis (``bench/script_instructions.py`` counts the scripts).
Needs valgrind; each run takes about a minute.

    .venv/bin/python bench/worker_instructions.py [--low 1000] [--high 3000] [--only library]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import time
from pathlib import Path

import redis
from _redis import private_redis
from peers import shape
from peers.procs import Environment, migrate, produce, start_worker, stop_worker
from peers.systems import SYSTEMS, System

#: Rows counted by default: the project's three and the floor at concurrency 100.
DEFAULT = ("library", "library-c100", "tasks", "floor-c100")
#: Longest time a worker under callgrind may take to start, then to do no job, before the run
#: is given up.
START_SECONDS, STALL_SECONDS = 600, 60


def instructions(system: System, jobs: int) -> int:
    """Return the instructions of the system's worker process running ``jobs`` jobs."""
    with private_redis() as url, tempfile.TemporaryDirectory(prefix="bench-instr-") as folder:
        env = Environment(redis_url=url, run_dir=Path(folder))
        migrate(env)  # the @task worker's database, as bench-peers makes it for every run
        produce(env, system, jobs)
        out = Path(folder) / "callgrind.out"
        valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
        worker = start_worker(env, system, prefix=valgrind)
        try:
            wait_done(redis.Redis.from_url(url), jobs, worker)
        finally:
            stop_worker(worker)
        return total(out)


def wait_done(client: redis.Redis, jobs: int, worker: subprocess.Popen[bytes]) -> None:
    """Wait until the worker has done ``jobs`` jobs (its counter in Redis), while it progresses.

    The floor acknowledges an entry whose job failed (it is not a queue): its counter can stop
    short, and the run is then given up rather than waited for.
    """
    done, since = -1, time.monotonic()
    while done < jobs:
        now_done = int(client.get(shape.COUNTER) or 0)
        if now_done != done:
            done, since = now_done, time.monotonic()
        limit = STALL_SECONDS if done > 0 else START_SECONDS
        if worker.poll() is not None or time.monotonic() - since > limit:
            raise RuntimeError(f"the worker did {done} of {jobs} jobs and stopped")
        time.sleep(0.2)


def total(out: Path) -> int:
    """Return the instruction total of a callgrind output file."""
    found = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no instruction total in {out}")
    return int(found.group(1))


def chosen_rows(doc: str | None, default: tuple[str, ...]) -> tuple[int, int, list[System]]:
    """Parse ``--low``, ``--high`` and ``--only`` (rows, ``default`` unless told); return them."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--low", type=int, default=1000)
    parser.add_argument("--high", type=int, default=3000)
    parser.add_argument("--only", default=",".join(default), help="comma-separated rows")
    args = parser.parse_args()
    if not 0 < args.low < args.high:
        parser.error("--low must be positive and below --high")
    names = args.only.split(",")
    unknown = sorted(set(names) - {system.name for system in SYSTEMS})
    if unknown:
        parser.error(f"unknown rows: {', '.join(unknown)}")
    return args.low, args.high, [system for system in SYSTEMS if system.name in names]


def main() -> None:
    """Count and print the instructions per job of each chosen row."""
    low_jobs, high_jobs, systems = chosen_rows(__doc__, DEFAULT)
    for system in systems:
        try:
            low, high = instructions(system, low_jobs), instructions(system, high_jobs)
        except RuntimeError as error:
            print(f"{system.label}: not counted: {error}", flush=True)
            continue
        per_job = (high - low) / (high_jobs - low_jobs)
        print(f"{system.label}: {per_job:,.0f} instructions per job", flush=True)


if __name__ == "__main__":
    main()
