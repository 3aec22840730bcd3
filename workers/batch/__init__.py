"""The batch explainability kind: ``BatchExplainabilityWorker``, ``BatchJobProgress``,
``create_batch_job`` and the explain generators."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers.lazy import lazy_exports

if TYPE_CHECKING:
    from .explainer import (
        DebateHistory,
        DebateNotReady,
        DefaultExplainGenerator,
        ExplainGenerator,
        load_explain_generator,
    )
    from .progress import BatchJobProgress, load_batch_progress
    from .worker import (
        BATCH_JOB_TYPE,
        BATCH_QUEUE,
        MAX_BATCH_ITEMS,
        BatchExplainabilityWorker,
        BatchFailed,
        BatchRejected,
        batch_job,
        create_batch_job,
    )

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".explainer": (
            "DebateHistory",
            "DebateNotReady",
            "DefaultExplainGenerator",
            "ExplainGenerator",
            "load_explain_generator",
        ),
        ".progress": ("BatchJobProgress", "load_batch_progress"),
        ".worker": (
            "BATCH_JOB_TYPE",
            "BATCH_QUEUE",
            "MAX_BATCH_ITEMS",
            "BatchExplainabilityWorker",
            "BatchFailed",
            "BatchRejected",
            "batch_job",
            "create_batch_job",
        ),
    },
)

__all__ = [
    "BATCH_JOB_TYPE",
    "BATCH_QUEUE",
    "MAX_BATCH_ITEMS",
    "BatchExplainabilityWorker",
    "BatchFailed",
    "BatchJobProgress",
    "BatchRejected",
    "DebateHistory",
    "DebateNotReady",
    "DefaultExplainGenerator",
    "ExplainGenerator",
    "batch_job",
    "create_batch_job",
    "load_batch_progress",
    "load_explain_generator",
]
