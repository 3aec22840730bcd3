"""Measure what observability costs a worker: no-op jobs/s without and with it.

Each variant runs in its own process (a process installs one tracer provider for good), the
variants alternate, and the median of the rounds is compared with "bare" (no middleware, no
tracing SDK). "observed" is the worker as ``queue_worker`` runs it: Tracing + Logging + Metrics
middleware and JSON log lines at INFO; then, as ``queue_app.observability.telemetry`` sets
it up when an exporter is configured, the OpenTelemetry SDK (batch span processor; here an
exporter that drops the spans) and the Redis client instrumented. The sampler decides how
many jobs record a span: every job (the SDK default, ``parentbased_always_on``) or 1 in 10
(``OTEL_TRACES_SAMPLER=parentbased_traceidratio``, ``OTEL_TRACES_SAMPLER_ARG=0.1``).
The component lines ("... only", no SDK) show what each middleware costs on its own. Besides
jobs/s (wall clock, sensitive to other load on the machine) it reports the worker's CPU time
per job. Target: an overhead under 10 %.

Usage: ``.venv/bin/python bench/observability_overhead.py [--rounds N] [--jobs N]``
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from _redis import private_redis
from opentelemetry import trace
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)

from queue_app.observability.logformat import JsonFormatter
from queue_app.queue import Job, QueueConfig, create_redis_queue
from workers import (
    BaseWorker,
    LoggingMiddleware,
    Middleware,
    MiddlewareChain,
    TracingMiddleware,
    WorkerOptions,
)
from workers.metrics import MetricsMiddleware

CONCURRENCY = 50
#: Variant name -> (middleware, sampler of the SDK or None for no SDK, Redis instrumented).
VARIANTS: dict[str, tuple[str, Sampler | None, bool]] = {
    "bare": ("", None, False),
    "metrics middleware only": ("metrics", None, False),
    "logging middleware only": ("logging", None, False),
    "tracing middleware only, no SDK": ("tracing", None, False),
    "observed, no exporter (tracing off)": ("all", None, False),
    "observed, tracing 1 job in 10": ("all", ParentBased(TraceIdRatioBased(0.1)), True),
    "observed, tracing every job": ("all", ParentBased(ALWAYS_ON), True),
}
MIDDLEWARE: dict[str, list[type[Middleware]]] = {
    "": [],
    "metrics": [MetricsMiddleware],
    "logging": [LoggingMiddleware],
    "tracing": [TracingMiddleware],
    "all": [TracingMiddleware, LoggingMiddleware, MetricsMiddleware],
}


class DropSpans(SpanExporter):
    """Drop exported spans: measures the SDK, not a collector."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Accept ``spans``."""
        return SpanExportResult.SUCCESS


async def noop(job: Job) -> None:
    return None


async def jobs_per_second(url: str, jobs: int, chain: MiddlewareChain) -> tuple[float, float]:
    """Run ``jobs`` no-op jobs; return jobs per second and CPU microseconds per job."""
    config = QueueConfig(redis_url=url)
    producer = await create_redis_queue(consumer_name="producer", config=config)
    await producer.redis.flushall()
    producer._known_queues.clear()
    batch = [Job(payload={"i": i}, metadata={"job_type": "noop"}) for i in range(jobs)]
    await producer.enqueue_many(batch)
    queue = await create_redis_queue(consumer_name="bench", config=config)
    options = WorkerOptions(worker_id="bench", max_concurrent=CONCURRENCY, burst=True)
    worker = BaseWorker(queue, {"noop": noop}, options, middleware=chain)
    started, cpu = time.perf_counter(), time.process_time()
    await worker.start()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert worker.counters["completed"] == jobs, worker.counters
    await queue.close()
    await producer.close()
    return jobs / elapsed, cpu / jobs * 1e6


def install(middleware: str, sampler: Sampler | None, redis_spans: bool) -> MiddlewareChain:
    """Set up this process as the variant asks; return the worker's middleware chain."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    if sampler is not None:
        provider = TracerProvider(sampler=sampler)
        provider.add_span_processor(BatchSpanProcessor(DropSpans()))
        trace.set_tracer_provider(provider)
    if redis_spans:
        redis_provider = TracerProvider(sampler=ParentBased(root=ALWAYS_OFF))
        redis_provider.add_span_processor(BatchSpanProcessor(DropSpans()))
        RedisInstrumentor().instrument(tracer_provider=redis_provider)
    return MiddlewareChain([layer() for layer in MIDDLEWARE[middleware]])


def run_variant(name: str, url: str, jobs: int) -> None:
    """Child process: print the jobs/s of one run of ``name``."""
    chain = install(*VARIANTS[name])
    print(*asyncio.run(jobs_per_second(url, jobs, chain)))


def measure(url: str, rounds: int, jobs: int) -> dict[str, list[tuple[float, float]]]:
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in VARIANTS}
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for _ in range(rounds):
        for name in VARIANTS:
            args = [sys.executable, __file__, "--variant", name, "--jobs", str(jobs), url]
            output = subprocess.run(args, env=env, check=True, capture_output=True, text=True)
            rate, cpu = output.stdout.strip().splitlines()[-1].split()
            rates[name].append((float(rate), float(cpu)))
    return rates


def report(rates: dict[str, list[tuple[float, float]]], rounds: int, jobs: int) -> None:
    """Print jobs/s (wall clock) and worker CPU time per job, each with its overhead."""
    base_rate = statistics.median(rate for rate, _ in rates["bare"])
    base_cpu = statistics.median(cpu for _, cpu in rates["bare"])
    print(f"no-op jobs, {jobs:,} per run, concurrency {CONCURRENCY}, median of {rounds} runs")
    print(f"  {'variant':<40} {'jobs/s':>8} {'overhead':>8}   {'CPU/job':>8} {'overhead':>8}")
    for name, runs in rates.items():
        rate = statistics.median(r for r, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        slower = (base_rate - rate) / base_rate * 100
        costlier = (cpu - base_cpu) / base_cpu * 100
        print(f"  {name:<40} {rate:8,.0f} {slower:7.1f}%   {cpu:6.1f}us {costlier:7.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("redis_url", nargs="?")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.variant:
        run_variant(arguments.variant, arguments.redis_url, arguments.jobs)
        return
    if arguments.redis_url:
        report(measure(arguments.redis_url, arguments.rounds, arguments.jobs), arguments.rounds,
               arguments.jobs)  # fmt: skip
        return
    with private_redis() as url:
        report(measure(url, arguments.rounds, arguments.jobs), arguments.rounds, arguments.jobs)


if __name__ == "__main__":
    main()
