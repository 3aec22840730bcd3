"""The delivery protocol model (queue_app/queue/redis/model/delivery.pml), checked with spin."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

VERIFY = Path(__file__).resolve().parents[2] / "bin" / "verify-model"
#: A small bound: two workers, one crash, one lost reply, one requeue (a few seconds of search).
SMALL = ("-DWORKERS=2",)


@pytest.fixture(autouse=True)
def _spin_installed() -> None:
    """Skip without spin and gcc, except in CI, where bin/setup has installed them."""
    missing = [tool for tool in ("spin", "gcc") if shutil.which(tool) is None]
    if missing and os.environ.get("CI"):
        pytest.fail(f"{' and '.join(missing)} missing in CI: bin/setup installs them")
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed: run bin/setup (Debian spin, gcc)")


def verify(*defines: str) -> subprocess.CompletedProcess[str]:
    """Run bin/verify-model with ``defines``; return the finished process."""
    return subprocess.run(
        [str(VERIFY), *SMALL, *defines],
        env={**os.environ, "PAN_OPT": "-O0"},  # a small bound: compiling dominates
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )


def test_delivery_model_holds_for_two_workers() -> None:
    run = verify()
    assert run.returncode == 0, run.stdout + run.stderr
    assert "errors: 0" in run.stdout
    stored = re.search(r"(\d+) states, stored", run.stdout)
    assert stored is not None and int(stored[1]) > 50_000, run.stdout


@pytest.mark.parametrize(
    ("mutant", "violated"),
    [
        # Outcomes written without checking the token: a stale worker completes a job again.
        (("-DNO_FENCING", "-DCANCELS=0"), "(completions[j]<=1)"),
        # cancel.lua leaving the token: the running worker's outcome overwrites CANCELLED.
        (("-DCANCEL_KEEPS_TOKEN",), "cancelled[0]"),
        # A retry outcome that forgets the delayed set: the job is lost.
        (("-DRETRY_FORGETS_DELAY",), "delayed[0]"),
    ],
)
def test_delivery_model_finds_the_violation_of_a_mutant(
    mutant: tuple[str, ...], violated: str
) -> None:
    run = verify(*mutant)
    assert run.returncode == 1, run.stdout + run.stderr
    [first] = [line for line in run.stdout.splitlines() if line.startswith("pan:1:")]
    assert "assertion violated" in first
    assert violated in first
