"""The chaos run (``make chaos``) at a tenth of its size: no job lost while faults strike."""

from __future__ import annotations

import json
import os
import signal
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


def run_chaos(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``python -m chaos`` in a process group of its own; past ``timeout``, kill the group
    (its redis-server and workers with it) and fail with the stages it printed."""
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    command = [sys.executable, "-m", "chaos", *args]
    with subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            pytest.fail(f"chaos run still running after {timeout} s:\n{stdout}{stderr[-3000:]}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


@pytest.mark.timeout(180)
def test_chaos_run_loses_no_job_and_fences_duplicates(tmp_path: Path) -> None:
    record_path = tmp_path / "chaos.json"
    result = run_chaos([*SHORT_PLAN, "--json", str(record_path)], timeout=170)
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
