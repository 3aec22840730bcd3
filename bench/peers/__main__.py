"""Run the side-by-side benchmark and print its markdown table: ``python -m peers [--quick]``.

``bin/bench-peers`` is the way in (it prepares the peers' virtualenvs). A peer whose package is
missing from its virtualenv is skipped with a notice; this project's rows always run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from _redis import private_redis

from peers import procs, report
from peers.measure import Phases, Plan
from peers.systems import FLOOR, PROJECT, QUICK, SYSTEMS, System

README = procs.ROOT / "README.md"
START, END = "<!-- bench-peers:start -->", "<!-- bench-peers:end -->"
#: What the table reports the versions of, for this project's rows.
PROJECT_PACKAGES = ("django", "redis")
VERSION_SCRIPT = """
import importlib.metadata as m, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        found[name] = m.version(name)
    except m.PackageNotFoundError:
        pass
print(json.dumps(found))
"""


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Return the command-line options."""
    parser = argparse.ArgumentParser(prog="bin/bench-peers", description=__doc__)
    names = ", ".join(s.name for s in SYSTEMS)
    parser.add_argument(
        "--quick", action="store_true", help="500 jobs, 1 rep, project + huey + floor"
    )
    parser.add_argument("--jobs", type=int, help="jobs per throughput run (10,000)")
    parser.add_argument("--reps", type=int, help="repetitions, interleaved (3)")
    parser.add_argument("--samples", type=int, help="latency samples at 100 jobs/s (500)")
    parser.add_argument("--only", help=f"comma-separated systems among: {names}")
    parser.add_argument("--json", type=Path, default=procs.ROOT / "test-output/bench-peers.json")
    parser.add_argument("--update-readme", action="store_true", help="replace the README table")
    parser.add_argument(
        "--table-from", type=Path, help="measure nothing: print the table of this JSON record"
    )
    return parser.parse_args(argv)


def plan_of(args: argparse.Namespace) -> tuple[Plan, int]:
    """Return the sizes of the run and its repetitions: defaults, ``--quick``, or options."""
    jobs, reps, samples = (500, 1, 50) if args.quick else (10_000, 3, 500)
    return Plan(jobs=args.jobs or jobs, samples=args.samples or samples), args.reps or reps


def installed(venv: str, packages: list[str]) -> dict[str, str]:
    """Return the version of each of ``packages`` installed in ``venv`` (absent: missing)."""
    python = procs.ROOT / venv / "bin" / "python"
    if not python.exists():
        return {}
    done = subprocess.run(
        [python, "-c", VERSION_SCRIPT, *packages], capture_output=True, text=True, check=True
    )
    return dict(json.loads(done.stdout))


def chosen_systems(args: argparse.Namespace) -> tuple[list[System], dict[str, str]]:
    """Return the systems to run (``--only``/``--quick``; peers installed) and their versions."""
    names = args.only.split(",") if args.only else QUICK if args.quick else None
    unknown = set(names or ()) - {s.name for s in SYSTEMS}
    if unknown:
        sys.exit(f"bin/bench-peers: unknown systems {sorted(unknown)}")
    versions = {"this project": project_version(), **installed(".venv", list(PROJECT_PACKAGES))}
    systems = []
    for system in (s for s in SYSTEMS if names is None or s.name in names):
        if system.kind in (PROJECT, FLOOR):
            systems.append(system)
        elif found := installed(system.venv_path, [system.package]):
            versions.update(found)
            systems.append(system)
        else:
            print(f"skipped {system.label}: {system.package} not in {system.venv_path}")
    return systems, versions


def project_version() -> str:
    """Return the checked-out commit of this project (with ``-dirty`` for local changes)."""
    done = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=procs.ROOT, capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


def machine(redis_url: str) -> dict[str, Any]:
    """Return what the table says about the machine."""
    with open("/proc/cpuinfo") as info:
        models = [line.split(":", 1)[1].strip() for line in info if line.startswith("model name")]
    return {
        "nproc": os.cpu_count(),
        "cpu": models[0] if models else platform.processor() or "unknown CPU",
        "redis": redis.Redis.from_url(redis_url).info("server")["redis_version"],
        "load_before": os.getloadavg()[0],
        "python": platform.python_version(),
    }


def run_all(
    env: procs.Environment,
    plan: Plan,
    reps: int,
    systems: list[System],
    after_round: Callable[[dict[str, Any]], None],
) -> dict[str, Any]:
    """Run every repetition, systems interleaved; return each system's figures and errors.

    ``after_round`` gets the results so far after each round (every system's repetition).
    """
    results: dict[str, Any] = {s.name: {"reps": [], "errors": []} for s in systems}
    for rep in range(reps):
        for system in systems:
            print(f"rep {rep + 1}/{reps}: {system.label}", file=sys.stderr, flush=True)
            try:
                results[system.name]["reps"].append(Phases(env, plan, system).run())
            except procs.RunFailed as error:
                print(f"  failed: {error}", file=sys.stderr, flush=True)
                results[system.name]["errors"].append(str(error))
        after_round(results)
    return results


def record_of(
    meta: dict[str, Any], systems: list[System], results: dict[str, Any]
) -> dict[str, Any]:
    """Return the JSON record of the run, medians included."""
    rows = []
    for system in systems:
        reps = results[system.name]["reps"]
        rows.append(
            {
                "name": system.name,
                "label": system.label,
                "kind": system.kind,
                "settings": system.settings,
                "median": report.medians(reps) if reps else {},
                **results[system.name],
            }
        )
    return {**meta, "systems": rows}


def markdown(record: dict[str, Any], systems: list[System]) -> str:
    """Return the heading lines and the table of a run record."""
    median = {row["name"]: row["median"] for row in record["systems"] if row["median"]}
    return "\n".join([*report.heading(record), "", *report.table(systems, median)])


def update_readme(text: str) -> None:
    """Replace the README's text between the bench-peers markers by ``text``."""
    readme = README.read_text()
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{text}\n{END}{tail}")


def measure(args: argparse.Namespace, argv: list[str], run_dir: Path) -> dict[str, Any]:
    """Start the private Redis, run the systems, and return the record of the run."""
    plan, reps = plan_of(args)
    systems, versions = chosen_systems(args)
    with private_redis() as url:
        env = procs.Environment(url, run_dir)
        meta = {
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": " ".join(["bin/bench-peers", *argv]) if argv else "make bench-peers",
            "machine": machine(url),
            "plan": {"jobs": plan.jobs, "reps": reps, "samples": plan.samples, "rate": plan.rate},
            "versions": versions,
        }
        procs.migrate(env)

        def save(results: dict[str, Any]) -> None:
            """Write the JSON after each round, so that a stopped run keeps what it measured."""
            write_json(args.json, record_of(meta, systems, results))

        return record_of(meta, systems, run_all(env, plan, reps, systems, save))


def write_json(path: Path, record: dict[str, Any]) -> None:
    """Write the record of the run to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str]) -> int:
    """Run the benchmark (or read ``--table-from``); print the table; write JSON and README."""
    args = parse_args(argv)
    # Stopped by a signal, still stop the workers and the Redis (the finally blocks); SIGINT
    # may arrive ignored from a background shell.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    run_dir = None if args.table_from else Path(tempfile.mkdtemp(prefix="bench-peers-"))
    if run_dir is None:
        record = json.loads(args.table_from.read_text())
    else:
        record = measure(args, argv, run_dir)
        write_json(args.json, record)
    systems = [s for s in SYSTEMS if s.name in {row["name"] for row in record["systems"]}]
    text = markdown(record, systems)
    print(text)
    if args.update_readme:
        update_readme(text)
    if run_dir is None:
        return 0
    if any(row["errors"] for row in record["systems"]):
        print(f"some runs failed; the processes' output is in {run_dir}", file=sys.stderr)
        return 1
    shutil.rmtree(run_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
