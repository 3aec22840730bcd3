"""Worker runtime and worker kinds; imports the queue library, never Django.

Each worker kind is one class (``DebateWorker``, ``WebhookDeliveryWorker``, ...), and
``WORKER_KINDS`` maps each queue name to it: ``manage.py queue_worker`` builds exactly these
classes through their ``build`` class method.
"""

from __future__ import annotations

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

#: Worker kinds by queue name.
WORKER_KINDS: dict[str, WorkerKind] = {
    BatchExplainabilityWorker.QUEUE_NAME: BatchExplainabilityWorker,
    ConsensusHealingWorker.QUEUE_NAME: ConsensusHealingWorker,
    DebateWorker.QUEUE_NAME: DebateWorker,
    DIAGNOSTICS_QUEUE: DiagnosticsWorker,
    GauntletWorker.QUEUE_NAME: GauntletWorker,
    WEBHOOKS_QUEUE: WebhookDeliveryWorker,
    TranscriptionWorker.QUEUE_NAME: TranscriptionWorker,
    RoutingWorker.QUEUE_NAME: RoutingWorker,
}

__all__ = [
    "JOB_TYPE_GAUNTLET",
    "JOB_TYPE_ROUTING",
    "JOB_TYPE_ROUTING_DEBATE",
    "JOB_TYPE_ROUTING_EMAIL",
    "JOB_TYPE_TRANSCRIPTION",
    "JOB_TYPE_TRANSCRIPTION_AUDIO",
    "JOB_TYPE_TRANSCRIPTION_VIDEO",
    "JOB_TYPE_TRANSCRIPTION_YOUTUBE",
    "WORKER_KINDS",
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
]
