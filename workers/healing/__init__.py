"""The consensus healing kind: ``ConsensusHealingWorker`` and the reference's healing types."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers.lazy import lazy_exports

if TYPE_CHECKING:
    from .actions import Healer, rerun_payload
    from .process import (
        configure_consensus_healing,
        get_consensus_healing_worker,
        start_consensus_healing,
        stop_consensus_healing,
    )
    from .rules import candidate_of, choose_action, choose_reason, trend_of
    from .store import FinishedDebate, HealingRecord, HealingStore
    from .types import (
        HealingAction,
        HealingCandidate,
        HealingConfig,
        HealingReason,
        HealingResult,
    )
    from .worker import (
        HEALING_QUEUE,
        JOB_TYPE_CONSENSUS_HEAL,
        SCAN_LEASE,
        ConsensusHealingWorker,
        heal_job_id,
    )

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".actions": ("Healer", "rerun_payload"),
        ".process": (
            "configure_consensus_healing",
            "get_consensus_healing_worker",
            "start_consensus_healing",
            "stop_consensus_healing",
        ),
        ".rules": ("candidate_of", "choose_action", "choose_reason", "trend_of"),
        ".store": ("FinishedDebate", "HealingRecord", "HealingStore"),
        ".types": (
            "HealingAction",
            "HealingCandidate",
            "HealingConfig",
            "HealingReason",
            "HealingResult",
        ),
        ".worker": (
            "HEALING_QUEUE",
            "JOB_TYPE_CONSENSUS_HEAL",
            "SCAN_LEASE",
            "ConsensusHealingWorker",
            "heal_job_id",
        ),
    },
)

__all__ = [
    "HEALING_QUEUE",
    "JOB_TYPE_CONSENSUS_HEAL",
    "SCAN_LEASE",
    "ConsensusHealingWorker",
    "FinishedDebate",
    "Healer",
    "HealingAction",
    "HealingCandidate",
    "HealingConfig",
    "HealingReason",
    "HealingRecord",
    "HealingResult",
    "HealingStore",
    "candidate_of",
    "choose_action",
    "choose_reason",
    "configure_consensus_healing",
    "get_consensus_healing_worker",
    "heal_job_id",
    "rerun_payload",
    "start_consensus_healing",
    "stop_consensus_healing",
    "trend_of",
]
