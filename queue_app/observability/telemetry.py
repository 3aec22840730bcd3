"""OpenTelemetry setup of a web or worker process, from the standard ``OTEL_*`` variables.

Nothing is installed unless an exporter is configured (``settings.ARAGORA_TRACING``, read from
the environment by ``aragora_site/settings.py``): OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT``
(or ``OTEL_TRACES_EXPORTER=otlp``) is set, the console with ``OTEL_TRACES_EXPORTER=console``,
and a JSON-lines file (one span per line) with ``ARAGORA_OTEL_FILE``. Then the SDK tracer
provider is installed, and Django, httpx and Redis are instrumented; the SDK reads the other
``OTEL_*`` variables itself (resource attributes, sampler, OTLP headers and timeouts).

Redis commands are recorded only inside another span (a request, a job): a trace per poll or
heartbeat of the worker's loops would bury the traces that matter.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import IO, Any

from django.conf import settings
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_installed = False


def setup_telemetry(service_name: str) -> bool:
    """Install tracing once per process; return whether it is on.

    Args:
        service_name: ``service.name`` of this process unless ``OTEL_SERVICE_NAME`` sets one.
    """
    global _installed
    with _lock:
        if _installed:
            return True
        conf: dict[str, Any] = settings.ARAGORA_TRACING
        processors = [] if conf["disabled"] else span_processors(conf)
        if not processors:
            return False
        resource = Resource.create({} if conf["service_name"] else {SERVICE_NAME: service_name})
        provider = TracerProvider(resource=resource)
        # Redis spans only inside another span: never a trace per poll or heartbeat.
        redis_provider = TracerProvider(
            resource=resource, sampler=ParentBased(root=ALWAYS_OFF), shutdown_on_exit=False
        )
        for processor in processors:
            provider.add_span_processor(processor)
            redis_provider.add_span_processor(processor)
        trace.set_tracer_provider(provider)
        _instrument(conf, redis_provider)
        _installed = True
    logger.info("tracing on: exporters %s", ", ".join(exporter_names(conf)))
    return True


def exporter_names(conf: dict[str, Any]) -> list[str]:
    """Return the exporters ``conf`` asks for: ``otlp``, ``console`` and/or ``file``."""
    names = list(conf["exporters"]) if conf["exporters"] else []
    if not names and conf["otlp_endpoint"]:
        names = ["otlp"]
    names = [name for name in names if name in ("otlp", "console")]
    return [*names, "file"] if conf["file"] else names


def span_processors(conf: dict[str, Any]) -> list[SpanProcessor]:
    """Build one span processor per configured exporter (none by default)."""
    processors: list[SpanProcessor] = []
    for name in exporter_names(conf):
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            processors.append(BatchSpanProcessor(OTLPSpanExporter()))
        elif name == "console":
            processors.append(BatchSpanProcessor(ConsoleSpanExporter()))
        else:
            processors.append(SimpleSpanProcessor(JsonLinesSpanExporter(conf["file"])))
    return processors


def _instrument(conf: dict[str, Any], redis_provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    # Probes and scrapes would make most of the web's traces.
    DjangoInstrumentor().instrument(excluded_urls=conf["excluded_urls"])
    HTTPXClientInstrumentor().instrument()
    RedisInstrumentor().instrument(tracer_provider=redis_provider)


class JsonLinesSpanExporter(SpanExporter):
    """Append each finished span as one JSON line (``ReadableSpan.to_json``) to a file.

    For development and tests: spans are written as they end, from every thread.
    """

    def __init__(self, path: str) -> None:
        self._lock = threading.Lock()
        self._file: IO[str] | None = open(path, "a", encoding="utf-8")  # noqa: SIM115

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write ``spans`` and flush them to the file."""
        lines = "".join(span.to_json(indent=None) + "\n" for span in spans)
        with self._lock:
            if self._file is None:
                return SpanExportResult.FAILURE
            self._file.write(lines)
            self._file.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Close the file."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
