"""``manage.py queue_ledger``: drain the job event streams into the database ledger."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from queue_app.queue import get_queue_config
from queue_app.stores.ledger_writer import LedgerWriter


class Command(BaseCommand):
    """Run the ledger writer until SIGTERM/SIGINT, or once with --once / --prune."""

    help = "Store job events from Redis as ledger rows (JobRecord), in batches."

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the writer flags."""
        parser.add_argument("--batch-size", type=int, default=500, help="events per batch")
        parser.add_argument("--consumer", default=None, help="reader name (default: host-pid)")
        parser.add_argument(
            "--once", action="store_true", help="exit once no event is waiting (cron, tests)"
        )
        parser.add_argument(
            "--prune", action="store_true", help="only delete rows past the retention and exit"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Build the writer and run it."""
        writer = LedgerWriter(
            consumer_name=options["consumer"],
            config=get_queue_config(),
            batch_size=options["batch_size"],
        )
        if options["prune"]:
            deleted = asyncio.run(writer.prune())
            self.stdout.write(f"deleted {deleted} rows older than {writer.retention_days} days")
        elif options["once"]:
            stored = asyncio.run(_drain(writer))
            if writer.unavailable:
                raise CommandError(f"stored {stored} events, then the {writer.unavailable} failed")
            self.stdout.write(f"stored {stored} events")
        else:
            asyncio.run(_serve(writer))


async def _drain(writer: LedgerWriter) -> int:
    """Store batches until one comes back empty."""
    total = 0
    try:
        while stored := await writer.drain_once():
            total += stored
    finally:
        await writer.close()
    return total


async def _serve(writer: LedgerWriter) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await writer.run(stop)
