"""``manage.py queue_worker``: run a worker process for one or more queues."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import signal
from dataclasses import dataclass
from typing import Any

from django.core.checks import Tags
from django.core.management.base import BaseCommand, CommandError, CommandParser

from queue_app.observability.telemetry import setup_telemetry
from queue_app.queue import ConfigError, QueueConfig, QueueConnectionError, get_queue_config
from queue_app.queue.redis.core import default_consumer_name
from queue_app.stores.ledger_writer import WORKER_DEFER_SECONDS, LedgerWriter
from queue_app.wiring import UnknownQueue, build_workers
from workers import WorkerGroup, WorkerOptions
from workers.metrics import serve_metrics

logger = logging.getLogger(__name__)

#: Longest wait between two connection attempts of a worker started while Redis is down.
MAX_START_BACKOFF_SECONDS = 10.0
#: System checks run at start: all but the URL, admin, template and static file checks, which
#: concern the web process and import its whole side (URL conf, views, DRF: about 22 MB).
WORKER_CHECK_TAGS = [
    Tags.async_support,
    Tags.caches,
    Tags.commands,
    Tags.compatibility,
    Tags.database,
    Tags.files,
    Tags.mail,
    Tags.models,
    Tags.security,
    Tags.signals,
    Tags.sites,
    Tags.translation,
]


class Command(BaseCommand):
    """Run a queue worker until SIGTERM/SIGINT (or, with --burst, until the queues are empty)."""

    help = "Run a queue worker: reads the given queues and runs their jobs."
    requires_system_checks = WORKER_CHECK_TAGS

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        """Report a bad flag on the command line as one line on stderr, with exit status 2."""
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        if parser.called_from_command_line:

            def one_line_error(message: str) -> Any:
                parser.exit(2, f"{parser.prog}: error: {message}\n")

            parser.error = one_line_error  # type: ignore[method-assign]
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the worker flags."""
        parser.add_argument("--worker-id", default=None, help="worker id (default: host-pid)")
        parser.add_argument(
            "--concurrency",
            type=_positive_int,
            default=None,
            help="jobs run at once by each kind (default: each kind's own, see the README)",
        )
        parser.add_argument("--queues", type=_queue_list, default=["debates"])
        parser.add_argument("--shutdown-timeout", type=_non_negative_float, default=30.0)
        parser.add_argument("--metrics-port", type=_port, default=None)
        parser.add_argument("--burst", action="store_true", help="exit once the queues are empty")
        parser.add_argument(
            "--no-ledger", action="store_true", help="do not drain the ledger in this process"
        )
        parser.add_argument(
            "--exit-if-unreachable",
            action="store_true",
            help="exit 1 when Redis is unreachable at start (default: wait for it)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Build the worker and run it."""
        worker_options = options_of(options)
        setup_telemetry("aragora-worker")
        config = get_queue_config()
        serve = _Serve(
            worker_options,
            config,
            metrics_port=options["metrics_port"],
            with_ledger=not options["no_ledger"],
            wait_for_redis=not options["exit_if_unreachable"],
        )
        asyncio.run(_serve(serve))


def options_of(options: dict[str, Any]) -> WorkerOptions:
    """Return the worker options of the parsed flags (no ``--concurrency``: each kind's own)."""
    return WorkerOptions(
        worker_id=options["worker_id"] or default_consumer_name(),
        queues=tuple(options["queues"]),
        max_concurrent=options["concurrency"],
        shutdown_timeout=options["shutdown_timeout"],
        burst=options["burst"],
    )


@dataclass(frozen=True, slots=True)
class _Serve:
    options: WorkerOptions
    config: QueueConfig
    metrics_port: int | None
    with_ledger: bool
    wait_for_redis: bool


async def _connect(serve: _Serve) -> WorkerGroup | None:
    """Build the workers; while Redis is down, wait with backoff (None: stopped meanwhile)."""
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    delay, logged = 0.5, False
    try:
        while True:
            try:
                workers = await build_workers(serve.options, serve.config)
                if stopped.is_set():  # a signal came while the kinds were being built
                    workers.request_stop()
                return workers
            except UnknownQueue as error:
                raise CommandError(str(error), returncode=2) from error
            except ConfigError as error:
                raise CommandError(f"cannot start worker: {error}") from error
            except QueueConnectionError as error:
                if not serve.wait_for_redis:
                    raise CommandError(f"cannot start worker: {error}") from error
                if not logged:
                    logger.warning("Redis unreachable at start, waiting for it: %s", error)
                    logged = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopped.wait(), delay * random.uniform(0.5, 1.5))
                return None
            delay = min(delay * 2, MAX_START_BACKOFF_SECONDS)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


async def _serve(serve: _Serve) -> None:
    options, config = serve.options, serve.config
    workers = await _connect(serve)
    if workers is None:
        logger.info("stopped before Redis was reachable")
        return
    workers.install_signal_handlers()
    if serve.metrics_port is not None:
        _serve_metrics(workers, serve.metrics_port)
    logger.info(
        "worker %s reading %s with concurrency %s",
        options.worker_id,
        ",".join(options.queues),
        ", ".join(f"{'+'.join(w.options.queues)} {w.max_concurrent}" for w in workers.workers),
    )
    stop = asyncio.Event()
    ledger = asyncio.create_task(_run_ledger(stop, config)) if serve.with_ledger else None
    try:
        await workers.start()
    finally:
        stop.set()
        if ledger is not None:
            await ledger
        await workers.close()


def _serve_metrics(workers: WorkerGroup, port: int) -> None:
    try:
        serve_metrics(port, workers)
    except OSError as error:
        raise CommandError(f"cannot serve metrics on port {port}: {error}") from error


async def _run_ledger(stop: asyncio.Event, config: QueueConfig) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await LedgerWriter(config=config, defer_seconds=WORKER_DEFER_SECONDS).run(stop)


def _positive_int(raw: str) -> int:
    value = _number(int, raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {raw}")
    return value


def _non_negative_float(raw: str) -> float:
    value = _number(float, raw)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {raw}")
    return value


def _port(raw: str) -> int:
    value = _number(int, raw)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port (0-65535), got {raw}")
    return value


def _queue_list(raw: str) -> list[str]:
    names = [name.strip() for name in raw.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("needs at least one queue name")
    return names


def _number[N: (int, float)](kind: type[N], raw: str) -> N:
    try:
        return kind(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {raw!r}") from None
