"""The results of a run: medians, ratios to the best peer, the markdown table and the JSON."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from peers.systems import PEER, System


@dataclass(frozen=True, slots=True)
class Column:
    """One figure of the table."""

    key: str
    title: str
    #: True: more is better (a rate); False: less is better (a time, memory).
    higher: bool
    #: Format of the figure.
    spec: str
    #: The cell shows the ratio to the best peer.
    vs_peers: bool = True


COLUMNS = (
    Column("jobs_per_s", "worker jobs/s", True, ",.0f"),
    Column("enqueue_per_s", "enqueue/s, one by one", True, ",.0f"),
    Column("enqueue_many_per_s", "enqueue_many jobs/s", True, ",.0f", vs_peers=False),
    Column("latency_p50_ms", "pickup p50 ms", False, ".2f"),
    Column("latency_p99_ms", "pickup p99 ms", False, ".2f"),
    Column("two_procs_per_s", "2 processes jobs/s", True, ",.0f", vs_peers=False),
    Column("worker_cpu_us", "worker CPU µs/job", False, ",.0f", vs_peers=False),
    Column("redis_cpu_us", "Redis CPU µs/job", False, ",.0f", vs_peers=False),
    Column("idle_memory_mib", "idle worker MiB (PSS)", False, ".1f"),
    Column("startup_s", "worker startup s", False, ".2f"),
)


def medians(reps: list[dict[str, float]]) -> dict[str, float]:
    """Return the median of each figure over the repetitions that produced it."""
    keys = {key for rep in reps for key in rep}
    return {key: statistics.median(rep[key] for rep in reps if key in rep) for key in keys}


def best_peers(systems: list[System], median: dict[str, dict[str, float]]) -> dict[str, float]:
    """Return, per figure, the best value among the peers that produced it."""
    best = {}
    for column in COLUMNS:
        values = [
            median[s.name][column.key]
            for s in systems
            if s.kind == PEER and column.key in median.get(s.name, {})
        ]
        if values:
            best[column.key] = max(values) if column.higher else min(values)
    return best


def cell(column: Column, figures: dict[str, float], best: dict[str, float]) -> str:
    """Return one cell: the figure, and its ratio to the best peer (or, 2 processes, to 1)."""
    value = figures.get(column.key)
    if value is None:
        return "-"
    text = format(value, column.spec)
    if column.key == "two_procs_per_s" and figures.get("jobs_per_s"):
        return f"{text} ({value / figures['jobs_per_s']:.2f}x of 1)"
    if column.vs_peers and best.get(column.key):
        return f"{text} ({value / best[column.key]:.2f}x)"
    return text


def table(systems: list[System], median: dict[str, dict[str, float]]) -> list[str]:
    """Return the markdown table, one row per system."""
    best = best_peers(systems, median)
    lines = [
        "| system | " + " | ".join(c.title for c in COLUMNS) + " |",
        "|---|" + "---:|" * len(COLUMNS),
    ]
    for system in systems:
        figures = median.get(system.name, {})
        cells = [cell(c, figures, best) for c in COLUMNS] if figures else ["failed"] * len(COLUMNS)
        lines.append(f"| {system.label} | " + " | ".join(cells) + " |")
    return lines


def heading(meta: dict[str, Any]) -> list[str]:
    """Return the lines above the table: when, where, how, with which versions."""
    machine, plan = meta["machine"], meta["plan"]
    versions = ", ".join(f"{name} {version}" for name, version in meta["versions"].items())
    return [
        f"Measured {meta['date']} with `{meta['command']}` on {machine['nproc']} cores"
        f" ({machine['cpu']}), Redis {machine['redis']}, load average"
        f" {machine['load_before']:.2f} at start.",
        f"Median of {plan['reps']} repetitions interleaved across systems; {plan['jobs']:,}"
        f" jobs per throughput run; {plan['samples']} latency samples at {plan['rate']:.0f}"
        " jobs/s. In parentheses: the ratio to the best peer (best: highest rate, lowest time"
        " or memory); for 2 processes, the ratio to the row's one-process rate.",
        f"Versions: {versions}.",
    ]
