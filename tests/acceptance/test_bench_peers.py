"""``bin/bench-peers --quick``: the side-by-side benchmark runs, prints its table, writes its JSON.

No figure is judged (benchmarks print numbers; tests assert outcomes): the test checks that every
row of this project has a number in every column it measures, and that the JSON holds them.
huey is installed from PyPI on first use; without PyPI its row is skipped, said so on stdout.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Figures of every row; the library rows add ``enqueue_many`` and two processes.
FIGURES = {
    "jobs_per_s",
    "enqueue_per_s",
    "latency_p50_ms",
    "latency_p99_ms",
    "idle_memory_mib",
    "startup_s",
    "worker_cpu_us",
    "redis_cpu_us",
}
#: Figures of the JSON only: the jobs the one-process rate counted.
COUNTED = "jobs_counted"
LIBRARY_FIGURES = {"enqueue_many_per_s", "two_procs_per_s"}
PROJECT_ROWS = {
    "library": "this project, library worker",
    "library-c100": "this project, library worker, concurrency 100 + middleware",
    "tasks": "this project, django.tasks @task",
}
NUMBER = re.compile(r"^[\d,]+(\.\d+)?( \(\d+\.\d\dx( of 1)?\))?$")


def _table(stdout: str) -> dict[str, list[str]]:
    """Return the cells of each row of the markdown table, by row label."""
    rows = {}
    for line in stdout.splitlines():
        if line.startswith("| ") and not line.startswith("| system |"):
            label, *cells = (cell.strip() for cell in line.strip().strip("|").split("|"))
            rows[label] = cells
    return rows


@pytest.mark.timeout(900)
def test_bench_peers_quick_prints_a_table_of_numbers_and_writes_json(tmp_path: Path) -> None:
    output = tmp_path / "bench-peers.json"
    done = subprocess.run(
        [ROOT / "bin" / "bench-peers", "--quick", "--json", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=880,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    rows = _table(done.stdout)
    for name, label in PROJECT_ROWS.items():
        measured = [cell for cell in rows[label] if cell != "-"]
        expected = len(FIGURES) + (len(LIBRARY_FIGURES) if name != "tasks" else 0)
        assert len(measured) == expected, rows[label]
        assert all(NUMBER.match(cell) for cell in measured), rows[label]
    record = json.loads(output.read_text())
    systems = {row["name"]: row for row in record["systems"]}
    for name in PROJECT_ROWS:
        expected = FIGURES | {COUNTED} | (LIBRARY_FIGURES if name != "tasks" else set())
        assert set(systems[name]["median"]) == expected
        assert all(value > 0 for value in systems[name]["median"].values())
        assert systems[name]["errors"] == []
    # The floor row (bench/peers/floor_app.py) bounds the library row: it measures what it
    # claims only when its worker really drains the jobs.
    assert set(systems["floor"]["median"]) == FIGURES | {COUNTED} | LIBRARY_FIGURES
    assert systems["floor"]["median"][COUNTED] > 0
    assert systems["floor"]["errors"] == []
    if "huey" in systems:
        assert set(systems["huey"]["median"]) == FIGURES | {COUNTED}
    else:
        assert "skipped huey" in done.stdout
    assert record["plan"]["reps"] == 1
    assert record["machine"]["nproc"] >= 1
