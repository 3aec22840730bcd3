"""Processes of a run: start a worker or producer from its virtualenv, stop it, weigh it."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from peers.systems import System

ROOT = Path(__file__).resolve().parents[2]
#: Seconds a worker has to exit after SIGTERM before it is killed.
STOP_TIMEOUT = 15.0


class RunFailed(RuntimeError):
    """A producer or worker failed; the message ends with the tail of its output."""


@dataclass(frozen=True, slots=True)
class Environment:
    """Where the processes of a run find their Python and the private Redis."""

    redis_url: str
    #: Folder of the @task worker's database and of every process's output.
    run_dir: Path
    #: Django's secret key for the run (production settings refuse to start without one).
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(50))

    def bin_of(self, system: System) -> Path:
        """Return the bin folder of the system's virtualenv."""
        return ROOT / system.venv_path / "bin"

    def variables(self) -> dict[str, str]:
        """Return the environment of every process of the run."""
        return {
            **os.environ,
            "PYTHONPATH": str(ROOT / "bench"),
            "BENCH_REDIS_URL": self.redis_url,
            "REDIS_URL": self.redis_url,
            "ARAGORA_RUN_DIR": str(self.run_dir),
            # SQLite in the run's folder, whatever database the caller's environment names.
            "DATABASE_URL": f"sqlite:///{self.run_dir / 'db.sqlite3'}",
            "DJANGO_SETTINGS_MODULE": "aragora_site.settings",
            "ARAGORA_SECRET_KEY": self.secret_key,
        }


def migrate(env: Environment) -> None:
    """Create the @task worker's SQLite database (its ledger writes there)."""
    subprocess.run(
        [ROOT / ".venv/bin/python", "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env.variables(),
        check=True,
    )


def _output(env: Environment, name: str) -> Path:
    return env.run_dir / f"{name}.log"


def _tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def start_worker(
    env: Environment, system: System, index: int = 0, prefix: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    """Start one worker process of ``system`` in its own session (so its pool goes with it).

    ``prefix``: a command that runs the worker (``valgrind ...``).
    """
    fields = {"bin": env.bin_of(system), "url": env.redis_url}
    argv = [*prefix, *(part.format(**fields) for part in system.worker)]
    log = _output(env, f"{system.name}-worker-{index}").open("wb")
    with log:
        return subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env.variables(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the worker's process group, SIGKILL it after ``STOP_TIMEOUT``."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            break
        try:
            os.killpg(process.pid, signum)
            process.wait(STOP_TIMEOUT)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            continue
    # Pool children that outlived their parent (same session as the worker).
    if process.poll() is not None:
        _kill_group(process.pid)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return


def produce(
    env: Environment, system: System, count: int, *flags: str, prefix: Sequence[str] = ()
) -> float:
    """Run the system's producer for ``count`` jobs; return the seconds it reported.

    ``prefix``: a command that runs the producer (``valgrind ...``).
    """
    python = str(env.bin_of(system) / "python")
    argv = [*prefix, python, "-m", "peers.produce", system.app, str(count)]
    log = _output(env, f"{system.name}-producer")
    with log.open("wb") as out:
        done = subprocess.run(
            [*argv, *flags], cwd=ROOT, env=env.variables(), stdout=subprocess.PIPE, stderr=out
        )
    if done.returncode != 0:
        raise RunFailed(f"{system.name} producer exited {done.returncode}:\n{_tail(log)}")
    return float(json.loads(done.stdout.decode().splitlines()[-1])["seconds"])


def worker_failure(env: Environment, system: System, process: subprocess.Popen[bytes]) -> str:
    """Describe a worker that exited or did not finish, with the tail of its output."""
    state = "running" if process.poll() is None else f"exited {process.returncode}"
    return f"{system.name} worker ({state}):\n{_tail(_output(env, f'{system.name}-worker-0'))}"


def _stat_fields(pid: int) -> list[str] | None:
    """Return the fields of ``/proc/<pid>/stat`` after the command name (from ``state``)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def _children() -> dict[int, list[int]]:
    """Map each pid to its child pids, from /proc."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))):
            tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def _pss_kib(pid: int) -> int:
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    for line in rollup.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def _tree(pid: int) -> list[int]:
    """Return ``pid`` and its descendants."""
    tree, pending, found = _children(), [pid], []
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(tree.get(current, []))
    return found


def _cpu_ticks(pid: int) -> int:
    fields = _stat_fields(pid)
    return int(fields[11]) + int(fields[12]) if fields else 0  # utime, stime (14, 15 of proc(5))


def cpu_seconds(pid: int) -> float:
    """Return the CPU time (user + system) of ``pid`` and its live descendants, in seconds."""
    return sum(_cpu_ticks(each) for each in _tree(pid)) / os.sysconf("SC_CLK_TCK")


def memory_mib(pid: int) -> float:
    """Return the proportional set size (PSS) of ``pid`` and its descendants, in MiB."""
    return sum(_pss_kib(each) for each in _tree(pid)) / 1024
