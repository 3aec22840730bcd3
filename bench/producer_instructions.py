"""Count the instructions a producer process spends per enqueue (callgrind), for A/Bs.

The client side of bench-peers' enqueue columns, in instructions: for each row (its producer,
``python -m peers.produce``), on a private Redis, run the producer under
``valgrind --tool=callgrind`` for ``--low`` and then ``--high`` jobs, enqueued one by one and,
for the rows with ``enqueue_many``, in one call; print ``(I(high) - I(low)) / (high - low)``:
start-up and imports cancel out. Only the producer process is counted, not Redis
(``bench/script_instructions.py`` counts the scripts). Needs valgrind; a run takes 10-40 s.

    .venv/bin/python bench/producer_instructions.py [--low 1000] [--high 3000] [--only library]
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from _redis import private_redis
from peers.procs import Environment, migrate, produce
from peers.systems import System
from worker_instructions import chosen_rows, total

#: Rows counted by default: the library's and the @task producer, huey's, the floor's.
DEFAULT = ("library", "tasks", "huey", "floor")


def instructions(system: System, jobs: int, *flags: str) -> int:
    """Return the instructions of the system's producer enqueueing ``jobs`` jobs."""
    with private_redis() as url, tempfile.TemporaryDirectory(prefix="bench-instr-") as folder:
        env = Environment(redis_url=url, run_dir=Path(folder))
        migrate(env)  # task.enqueue() reads the task backend's settings, as bench-peers runs it
        out = Path(folder) / "callgrind.out"
        valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
        produce(env, system, jobs, *flags, prefix=valgrind)
        return total(out)


def per_job(system: System, low: int, high: int, *flags: str) -> float:
    """Return the instructions per job between runs of ``low`` and ``high`` jobs."""
    return (instructions(system, high, *flags) - instructions(system, low, *flags)) / (high - low)


def main() -> None:
    """Count and print the instructions per enqueued job of each chosen row."""
    low, high, systems = chosen_rows(__doc__, DEFAULT)
    for system in systems:
        line = f"{system.label}: {per_job(system, low, high):,.0f} instructions per enqueue"
        if system.bulk:
            line += f", {per_job(system, low, high, '--bulk'):,.0f} per job of enqueue_many"
        print(line, flush=True)


if __name__ == "__main__":
    main()
