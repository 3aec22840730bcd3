"""``bench/pickup_breakdown.py``: it splits each path's pickup and names Redis's calls.

No figure is judged: the test checks that every part has a positive number for both systems,
that the parts add up to the pickup, and that the Redis lines name the calls on the path.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PARTS = ("producer", "redis_and_wire", "worker")
SYSTEMS = ["library", "tasks", "floor"]


@pytest.mark.timeout(300)
def test_pickup_breakdown_splits_the_pickup_and_names_the_redis_calls() -> None:
    done = subprocess.run(
        [sys.executable, "bench/pickup_breakdown.py", "--reps", "1", "--samples", "30"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    lines = done.stdout.splitlines()
    assert lines[0].split()[-3:] == SYSTEMS, done.stdout
    figures = {line.split()[0]: [float(v) for v in line.split()[1:]] for line in lines[1:5]}
    assert set(figures) == {*PARTS, "pickup"}, done.stdout
    for system in range(len(SYSTEMS)):
        assert all(figures[part][system] > 0 for part in PARTS), done.stdout
        # Medians of parts need not add up exactly to the median of their sums.
        assert sum(figures[part][system] for part in PARTS) == pytest.approx(
            figures["pickup"][system], rel=0.35
        ), done.stdout
    calls = {line.split(":")[0].strip(): line for line in lines[6:9]}
    for path in ("library", "tasks"):
        assert re.search(r"script enqueue \d+ \(1\.0\)", calls[path]), done.stdout
        assert re.search(r"script take \d+ \([12]\.\d\)", calls[path]), done.stdout
    assert re.search(r"XADD \d+ \(1\.0\)", calls["floor"]), done.stdout
    assert re.search(r"XREADGROUP \d+ \(1\.0\)", calls["floor"]), done.stdout
