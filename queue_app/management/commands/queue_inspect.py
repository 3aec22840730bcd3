"""``manage.py queue_inspect``: what operators ask of a queue, without typing Redis commands.

Subcommands: ``groups`` and ``consumers`` (XINFO of every stream of the queue, one per priority
in use), ``pending`` (XPENDING summary and the oldest deliveries), ``dead`` (dead letters
with their error), ``job`` (a job's hash and its ledger row), ``keys`` (the queue's keys with
type, TTL and size). Tables by default, ``--json`` for scripts. An unknown queue or job, an
unreachable Redis or an unreadable ledger table, is one line on stderr and exit status 1.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from django.forms.models import model_to_dict

from queue_app.models import JobRecord
from queue_app.queue import QueueConfig, QueueConnectionError, get_queue_config
from queue_app.queue.redis.inspection import QueueInspector, Row
from queue_app.queue.redis.observe import connect

#: Longest value shown in a table cell (``--json`` shows everything).
MAX_CELL = 80
#: Subcommands that take a queue name, and the one that takes a job id.
QUEUE_SUBCOMMANDS = {
    "groups": "consumer groups of each stream of the queue (XINFO GROUPS)",
    "consumers": "consumers of the queue's group on each stream (XINFO CONSUMERS)",
    "pending": "pending deliveries: summary and the oldest (XPENDING)",
    "dead": "dead-lettered jobs, newest first, with their error",
    "keys": "the queue's Redis keys with type, TTL and size",
}


class Command(BaseCommand):
    """Show groups, consumers, pending deliveries, dead letters, a job or the keys of a queue."""

    help = "Inspect a queue: groups, consumers, pending, dead, job, keys (tables or --json)."

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare one subcommand per question."""
        subcommands = parser.add_subparsers(dest="what", required=True, metavar="SUBCOMMAND")
        for name, summary in QUEUE_SUBCOMMANDS.items():
            sub = subcommands.add_parser(name, help=summary, description=summary)
            sub.add_argument("queue", nargs="?", help="queue name (default: the default queue)")
            if name in ("pending", "dead"):
                sub.add_argument("--count", type=int, default=20, help="rows to show (20)")
            sub.add_argument("--json", action="store_true", help="print JSON")
        job = subcommands.add_parser("job", help="a job's hash fields and its ledger row")
        job.add_argument("job_id")
        job.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        """Read the answer, then print it."""
        config = get_queue_config()
        try:
            answer = asyncio.run(_read(config, options))
        except QueueConnectionError as error:
            raise CommandError(f"cannot read Redis at the configured REDIS_URL: {error}") from None
        if options["what"] == "job":
            answer = _with_ledger(answer, options["job_id"])
        if options["json"]:
            self.stdout.write(json.dumps(answer, indent=2, default=str))
        else:
            self.stdout.write(_render(answer))


async def _read(config: QueueConfig, options: dict[str, Any]) -> dict[str, Any]:
    """Return the sections of the answer, by title."""
    async with connect(config) as client:
        inspector = QueueInspector(client, config)
        what = options["what"]
        if what == "job":
            return {"job": options["job_id"], "redis": await inspector.job(options["job_id"])}
        queue = options["queue"] or config.default_queue
        known = await inspector.queue_names()
        if queue not in known:
            raise CommandError(f"unknown queue {queue!r} (known: {', '.join(known)})")
        return {"queue": queue, **await _queue_sections(inspector, what, queue, options)}


async def _queue_sections(
    inspector: QueueInspector, what: str, queue: str, options: dict[str, Any]
) -> dict[str, list[Row]]:
    if what == "groups":
        return {"groups": await inspector.groups(queue)}
    if what == "consumers":
        return {"consumers": await inspector.consumers(queue)}
    if what == "pending":
        return {
            "summary": await inspector.pending_summary(queue),
            "oldest deliveries": await inspector.pending(queue, _count(options)),
        }
    if what == "dead":
        return {"dead letters": await inspector.dead_letters(queue, _count(options))}
    return {"keys": await inspector.queue_keys(queue)}


def _count(options: dict[str, Any]) -> int:
    count = int(options["count"])
    if count < 1:
        raise CommandError(f"--count must be at least 1, got {count}")
    return count


def _with_ledger(answer: dict[str, Any], job_id: str) -> dict[str, Any]:
    """Add the job's ledger row (None when the ledger has none); no trace anywhere is an error."""
    try:
        record = JobRecord.objects.filter(job_id=job_id).first()
    except DatabaseError as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CommandError(f"cannot read the job ledger in the database: {reason}") from None
    ledger = model_to_dict(record, exclude=["id"]) if record is not None else None
    if answer["redis"] is None and ledger is None:
        raise CommandError(f"no job {job_id!r} in Redis (unknown or expired) or in the ledger")
    return {**answer, "ledger": ledger}


def _render(answer: dict[str, Any]) -> str:
    """Return the answer as titled tables (lists of rows) and field lists (single records)."""
    lines = []
    for title, section in answer.items():
        if isinstance(section, str):
            lines.append(f"{title}: {section}")
        elif isinstance(section, list):
            lines += ["", f"{title} ({len(section)})", *_table(section)]
        else:
            lines += ["", title, *_fields(section)]
    return "\n".join(lines).lstrip("\n")


def _table(rows: Sequence[Row]) -> list[str]:
    if not rows:
        return ["  (none)"]
    columns = list(dict.fromkeys(column for row in rows for column in row))
    cells = [[_cell(column, row.get(column)) for column in columns] for row in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]
    return [
        ("  " + "  ".join(v.ljust(width) for v, width in zip(line, widths, strict=True))).rstrip()
        for line in [columns, ["-" * width for width in widths], *cells]
    ]


def _fields(record: Row | None) -> list[str]:
    if record is None:
        return ["  (none)"]
    width = max(len(name) for name in record)
    return [f"  {name.ljust(width)}  {_cell(name, value)}" for name, value in record.items()]


def _cell(column: str, value: Any) -> str:
    """Return a value as one short line: times as UTC, mappings as name=value."""
    if value is None or value == {}:
        return "-"
    if column.endswith("_at") and isinstance(value, int | float | str):
        value = _as_time(value)
    elif isinstance(value, dict):
        value = ", ".join(f"{name}={count}" for name, count in value.items())
    shown = " ".join(str(value).split())
    return shown if len(shown) <= MAX_CELL else shown[: MAX_CELL - 1] + "…"


def _as_time(value: int | float | str) -> str:
    """Return a Unix time (seconds, as stored in job hashes) as ISO UTC; other values as is."""
    try:
        seconds = float(value)
    except ValueError:
        return str(value)
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")
