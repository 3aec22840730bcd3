"""The chaos run (``make chaos``) at a tenth of its size: no job lost while faults strike."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: 2,000 jobs over 12 s through 3 workers; 3 worker kills and one Redis kill and restart.
SHORT_PLAN = [
    *("--jobs", "2000", "--workers", "3", "--window", "12", "--retention", "8"),
    *("--kills", "3", "--stops", "0", "--redis-restarts", "1", "--seed", "7"),
]


@pytest.mark.timeout(180)
def test_chaos_run_loses_no_job_and_fences_duplicates(tmp_path: Path) -> None:
    record_path = tmp_path / "chaos.json"
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "chaos", *SHORT_PLAN, "--json", str(record_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    record = json.loads(record_path.read_text())
    figures = record["figures"]
    assert record["violations"] == []
    assert (figures["enqueued"], figures["lost"]) == (2000, 0)
    assert figures["completed"] == figures["completed_designed"] > 1800
    assert figures["failed"] == figures["failed_designed"] > 0
    assert figures["duplicates"] <= figures["duplicates_bound"]
    assert figures["results_not_of_owner"] == 0
    assert (figures["kills"], figures["redis_restarts"]) == (3, 1)
    assert figures["left_after_retention"] == {"job_hashes": 0, "indexed": 0, "dead": 0}
    assert "lost                " in result.stdout
