"""Worker runtime and worker kinds; imports the queue library, never Django.

Each worker kind is one class (``DebateWorker``, ``WebhookDeliveryWorker``, ...), and
``WORKER_KINDS`` maps each queue name to it: ``manage.py queue_worker`` builds exactly these
classes through their ``build`` class method.
"""

from __future__ import annotations

from .debate import (
    DebateExecutor,
    DebateWorker,
    ExecutorSettings,
    create_default_executor,
    load_executor,
)
from .diagnostics import DIAGNOSTICS_QUEUE, DiagnosticsWorker
from .runtime import (
    BaseWorker,
    Defer,
    Handler,
    KindContext,
    LoggingMiddleware,
    Middleware,
    MiddlewareChain,
    TracingMiddleware,
    UnknownJobType,
    WorkerGroup,
    WorkerKind,
    WorkerOptions,
    report_progress,
)
from .webhooks import WEBHOOKS_QUEUE, WebhookDeliveryWorker, enqueue_webhook_delivery

#: Worker kinds by queue name.
WORKER_KINDS: dict[str, WorkerKind] = {
    DebateWorker.QUEUE_NAME: DebateWorker,
    DIAGNOSTICS_QUEUE: DiagnosticsWorker,
    WEBHOOKS_QUEUE: WebhookDeliveryWorker,
}

__all__ = [
    "WORKER_KINDS",
    "BaseWorker",
    "DebateExecutor",
    "DebateWorker",
    "Defer",
    "DiagnosticsWorker",
    "ExecutorSettings",
    "Handler",
    "KindContext",
    "LoggingMiddleware",
    "Middleware",
    "MiddlewareChain",
    "TracingMiddleware",
    "UnknownJobType",
    "WebhookDeliveryWorker",
    "WorkerGroup",
    "WorkerKind",
    "WorkerOptions",
    "create_default_executor",
    "enqueue_webhook_delivery",
    "load_executor",
    "report_progress",
]
