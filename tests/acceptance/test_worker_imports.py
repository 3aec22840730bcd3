"""A worker process loads what its queues need, not every kind's libraries (idle memory).

``manage.py queue_worker --queues tasks`` runs here as a real process; at exit it writes the
modules it imported. The HTTP clients, the Fernet cipher, media tools and the other kinds'
delivery code stay out of it (they cost about 13 MiB of an idle worker and a fifth of its
start-up).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from queue_app.tasks.examples import add

ROOT = Path(__file__).resolve().parents[2]

#: Modules a worker of the ``tasks`` queue must not import: libraries of other kinds (httpx for
#: agents, webhooks, routing and transcription, with the CLI extras httpx loads when installed;
#: cryptography's Fernet for stored webhook secrets; yt-dlp, faster-whisper) and those kinds' code.
NOT_IN_A_TASKS_WORKER = (
    "httpx",
    "httpcore",
    "rich",
    "pygments",
    "cryptography.fernet",
    "cryptography.hazmat",
    "yt_dlp",
    "faster_whisper",
    "opentelemetry.exporter",
    "opentelemetry.instrumentation",
    "workers.batch.worker",
    "workers.debate",
    "workers.gauntlet.worker",
    "workers.healing.worker",
    "workers.webhooks.delivery",
    "workers.webhooks.worker",
    "workers.routing.channels",
    "workers.routing.worker",
    "workers.transcription.backends",
    "workers.transcription.media",
    "workers.transcription.worker",
    "workers.diagnostics",
)

#: Runs ``manage.py`` with the given arguments; at exit, writes ``sorted(sys.modules)`` as JSON
#: to the file named by ``MODULES_OUT``.
DRIVER = """
import atexit, json, os, runpy, sys

def write_modules():
    with open(os.environ["MODULES_OUT"], "w") as out:
        json.dump(sorted(sys.modules), out)

atexit.register(write_modules)
sys.argv = ["manage.py", *sys.argv[1:]]
runpy.run_path("manage.py", run_name="__main__")
"""


def imported_by_worker(redis_url: str, tmp_path: Path, *args: str) -> set[str]:
    """Run ``queue_worker --burst`` with ``args``; return the modules the process imported."""
    modules = tmp_path / "modules.json"
    env = {**os.environ, "REDIS_URL": redis_url, "MODULES_OUT": str(modules)}
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, "queue_worker", "--burst", "--no-ledger", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=45,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    return set(json.loads(modules.read_text()))


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """Return the modules among ``modules`` that are ``names`` or inside them."""
    return sorted(m for m in modules if any(m == n or m.startswith(f"{n}.") for n in names))


def test_tasks_worker_runs_a_task_without_the_other_kinds_libraries(
    redis_url: str, tmp_path: Path
) -> None:
    summed = add.enqueue(2, 3)

    modules = imported_by_worker(redis_url, tmp_path, "--queues", "tasks")

    assert add.get_result(summed.id).return_value == 5
    assert "queue_app.tasks.runner" in modules  # the worker did run the tasks kind
    assert loaded(modules, NOT_IN_A_TASKS_WORKER) == []


#: The worker module of each kind, by queue: a worker of one queue imports no other kind's.
#: (The healing kind's burst scan needs the database, so it is only among the others.)
KIND_WORKERS = {
    "batch_explainability": "workers.batch.worker",
    "debates": "workers.debate.worker",
    "diagnostics": "workers.diagnostics",
    "gauntlet": "workers.gauntlet.worker",
    "routing": "workers.routing.worker",
    "transcriptions": "workers.transcription.worker",
    "webhook_delivery": "workers.webhooks.worker",
}


@pytest.mark.parametrize("queue", sorted(KIND_WORKERS))
def test_a_kinds_worker_imports_that_kind_only(redis_url: str, tmp_path: Path, queue: str) -> None:
    modules = imported_by_worker(redis_url, tmp_path, "--queues", queue)

    assert KIND_WORKERS[queue] in modules
    others = {*KIND_WORKERS.values(), "workers.healing.worker"} - {KIND_WORKERS[queue]}
    assert loaded(modules, tuple(sorted(others))) == []
