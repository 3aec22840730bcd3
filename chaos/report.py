"""The chaos run's summary: a table on stdout and the whole record as JSON in test-output/."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

#: Rows of the printed table: label, then the figure keys shown in it.
ROWS = [
    ("jobs enqueued (enqueue errors)", ("enqueued", "enqueue_errors")),
    ("lost", ("lost",)),
    ("completed (designed)", ("completed", "completed_designed")),
    ("failed (designed)", ("failed", "failed_designed")),
    ("duplicate runs (bound)", ("duplicates", "duplicates_bound")),
    (
        "  in flight: killed, frozen, Redis",
        ("in_flight_killed", "in_flight_stopped", "in_flight_redis"),
    ),
    ("results not their owner's", ("results_not_of_owner",)),
    ("fenced late outcomes (frozen worker)", ("fenced_outcomes",)),
    ("worker kills, freezes, Redis restarts", ("kills", "stops", "redis_restarts")),
    ("frozen for (s)", ("stopped_seconds",)),
    ("Redis used_memory baseline, end (bytes)", ("memory_baseline", "memory_end")),
    ("worker exit codes at SIGTERM", ("exit_codes",)),
    (
        "duration (s): enqueue, all finished, total",
        ("enqueue_seconds", "finished_seconds", "duration_seconds"),
    ),
]


def table(figures: dict[str, Any], violations: list[str]) -> str:
    """Return the summary table, then each violation (or "violations: none")."""
    width = max(len(label) for label, _ in ROWS)
    lines = ["chaos run summary", "-" * (width + 30)]
    for label, keys in ROWS:
        values = ", ".join(_show(figures.get(key, "-")) for key in keys)
        lines.append(f"{label:<{width}}  {values}")
    lines.append("-" * (width + 30))
    lines += [f"VIOLATION: {v}" for v in violations] or ["violations: none"]
    return "\n".join(lines)


def _show(value: Any) -> str:
    if isinstance(value, dict) and "used_memory" in value:
        return f"{value['used_memory']} (dataset {value['used_memory_dataset']})"
    if isinstance(value, dict):
        return " ".join(str(v) for v in value.values())
    if isinstance(value, list):
        return "/".join(str(v) for v in value)
    return str(value)


def write_json(record: dict[str, Any], path: Path | None, root: Path) -> Path:
    """Write ``record`` to ``path`` (default ``test-output/chaos-<jobs>-<time>.json``)."""
    if path is None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = root / "test-output" / f"chaos-{record['plan']['jobs']}-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return path
