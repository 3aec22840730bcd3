"""Worker runtime and worker kinds; imports the queue library, never Django.

Each worker kind is one class (``DebateWorker``, ``WebhookDeliveryWorker``, ...), and
``WORKER_KINDS`` maps each queue name to it: ``manage.py queue_worker`` builds exactly these
classes through their ``build`` class method.

Every name is imported on first use (``workers.lazy``), and ``worker_kind(queue)`` imports
one kind only: a worker process loads the kinds it runs, not the others' libraries.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from workers.lazy import lazy_exports

if TYPE_CHECKING:
    from .agents import AgentSettings
    from .batch import BatchExplainabilityWorker, BatchJobProgress, create_batch_job
    from .debate import (
        DebateExecutor,
        DebateWorker,
        create_default_executor,
        load_executor,
    )
    from .diagnostics import DIAGNOSTICS_QUEUE, DiagnosticsWorker
    from .gauntlet import (
        JOB_TYPE_GAUNTLET,
        GauntletWorker,
        enqueue_gauntlet_job,
        recover_interrupted_gauntlets,
    )
    from .healing import (
        ConsensusHealingWorker,
        HealingAction,
        HealingCandidate,
        HealingConfig,
        HealingReason,
        HealingResult,
        get_consensus_healing_worker,
        start_consensus_healing,
        stop_consensus_healing,
    )
    from .routing import (
        JOB_TYPE_ROUTING,
        JOB_TYPE_ROUTING_DEBATE,
        JOB_TYPE_ROUTING_EMAIL,
        RoutingWorker,
        enqueue_routing_job,
        recover_interrupted_routing,
    )
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
    from .transcription import (
        JOB_TYPE_TRANSCRIPTION,
        JOB_TYPE_TRANSCRIPTION_AUDIO,
        JOB_TYPE_TRANSCRIPTION_VIDEO,
        JOB_TYPE_TRANSCRIPTION_YOUTUBE,
        TranscriptionWorker,
        enqueue_transcription_job,
        recover_interrupted_transcriptions,
    )
    from .webhooks import (
        WEBHOOKS_QUEUE,
        DeliveryResult,
        EndpointHealth,
        WebhookDeliveryWorker,
        enqueue_webhook_delivery,
    )

    #: Worker kinds by queue name (importing it imports every kind).
    WORKER_KINDS: dict[str, WorkerKind]

#: The worker class of each queue, by name; ``worker_kind`` imports it.
WORKER_KIND_CLASSES: dict[str, str] = {
    "batch_explainability": "BatchExplainabilityWorker",
    "consensus_healing": "ConsensusHealingWorker",
    "debates": "DebateWorker",
    "diagnostics": "DiagnosticsWorker",
    "gauntlet": "GauntletWorker",
    "webhook_delivery": "WebhookDeliveryWorker",
    "transcriptions": "TranscriptionWorker",
    "routing": "RoutingWorker",
}

_lazy_getattr, _lazy_dir = lazy_exports(
    __name__,
    {
        ".agents": ("AgentSettings",),
        ".batch": ("BatchExplainabilityWorker", "BatchJobProgress", "create_batch_job"),
        ".debate": ("DebateExecutor", "DebateWorker", "create_default_executor", "load_executor"),
        ".diagnostics": ("DIAGNOSTICS_QUEUE", "DiagnosticsWorker"),
        ".gauntlet": (
            "JOB_TYPE_GAUNTLET",
            "GauntletWorker",
            "enqueue_gauntlet_job",
            "recover_interrupted_gauntlets",
        ),
        ".healing": (
            "ConsensusHealingWorker",
            "HealingAction",
            "HealingCandidate",
            "HealingConfig",
            "HealingReason",
            "HealingResult",
            "get_consensus_healing_worker",
            "start_consensus_healing",
            "stop_consensus_healing",
        ),
        ".routing": (
            "JOB_TYPE_ROUTING",
            "JOB_TYPE_ROUTING_DEBATE",
            "JOB_TYPE_ROUTING_EMAIL",
            "RoutingWorker",
            "enqueue_routing_job",
            "recover_interrupted_routing",
        ),
        ".runtime": (
            "BaseWorker",
            "Defer",
            "Handler",
            "KindContext",
            "LoggingMiddleware",
            "Middleware",
            "MiddlewareChain",
            "TracingMiddleware",
            "UnknownJobType",
            "WorkerGroup",
            "WorkerKind",
            "WorkerOptions",
            "report_progress",
        ),
        ".transcription": (
            "JOB_TYPE_TRANSCRIPTION",
            "JOB_TYPE_TRANSCRIPTION_AUDIO",
            "JOB_TYPE_TRANSCRIPTION_VIDEO",
            "JOB_TYPE_TRANSCRIPTION_YOUTUBE",
            "TranscriptionWorker",
            "enqueue_transcription_job",
            "recover_interrupted_transcriptions",
        ),
        ".webhooks": (
            "WEBHOOKS_QUEUE",
            "DeliveryResult",
            "EndpointHealth",
            "WebhookDeliveryWorker",
            "enqueue_webhook_delivery",
        ),
    },
)


def worker_kind(queue: str) -> WorkerKind:
    """Return the worker class serving ``queue``, importing its kind only (KeyError: none)."""
    kind: WorkerKind = getattr(sys.modules[__name__], WORKER_KIND_CLASSES[queue])
    return kind


def __getattr__(name: str) -> object:
    if name != "WORKER_KINDS":
        return _lazy_getattr(name)
    kinds = {queue: worker_kind(queue) for queue in WORKER_KIND_CLASSES}
    globals()["WORKER_KINDS"] = kinds  # one dict, as when it was built at import
    return kinds


def __dir__() -> list[str]:
    return sorted({*_lazy_dir(), "WORKER_KINDS"})


__all__ = [
    "DIAGNOSTICS_QUEUE",
    "JOB_TYPE_GAUNTLET",
    "JOB_TYPE_ROUTING",
    "JOB_TYPE_ROUTING_DEBATE",
    "JOB_TYPE_ROUTING_EMAIL",
    "JOB_TYPE_TRANSCRIPTION",
    "JOB_TYPE_TRANSCRIPTION_AUDIO",
    "JOB_TYPE_TRANSCRIPTION_VIDEO",
    "JOB_TYPE_TRANSCRIPTION_YOUTUBE",
    "WEBHOOKS_QUEUE",
    "WORKER_KINDS",
    "WORKER_KIND_CLASSES",
    "AgentSettings",
    "BaseWorker",
    "BatchExplainabilityWorker",
    "BatchJobProgress",
    "ConsensusHealingWorker",
    "DebateExecutor",
    "DebateWorker",
    "Defer",
    "DeliveryResult",
    "DiagnosticsWorker",
    "EndpointHealth",
    "GauntletWorker",
    "Handler",
    "HealingAction",
    "HealingCandidate",
    "HealingConfig",
    "HealingReason",
    "HealingResult",
    "KindContext",
    "LoggingMiddleware",
    "Middleware",
    "MiddlewareChain",
    "RoutingWorker",
    "TracingMiddleware",
    "TranscriptionWorker",
    "UnknownJobType",
    "WebhookDeliveryWorker",
    "WorkerGroup",
    "WorkerKind",
    "WorkerOptions",
    "create_batch_job",
    "create_default_executor",
    "enqueue_gauntlet_job",
    "enqueue_routing_job",
    "enqueue_transcription_job",
    "enqueue_webhook_delivery",
    "get_consensus_healing_worker",
    "load_executor",
    "recover_interrupted_gauntlets",
    "recover_interrupted_routing",
    "recover_interrupted_transcriptions",
    "report_progress",
    "start_consensus_healing",
    "stop_consensus_healing",
    "worker_kind",
]
