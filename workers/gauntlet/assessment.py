"""From the auditors' answers to a gauntlet's verdict, confidence, risk and findings (pure).

A probe fails when at least half of its auditors fail it. The gauntlet fails when a probe fails
with high or critical severity; it is conditional when a probe fails with a milder one or some
probes did not finish in time; it needs review when no probe finished; otherwise it passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import fmean
from typing import Any

from ..agents import Answer, normalise_answer
from .probes import SEVERITIES

#: Findings that say there is none.
NO_FINDING = frozenset({"none", "no findings", "nothing", "n a"})
#: Weight of each severity in the risk score (the reference's weighting).
RISK_WEIGHTS = {"critical": 10, "high": 5, "medium": 2, "low": 1, "info": 0}
BLOCKING = frozenset({"critical", "high"})


def worst(severities: Sequence[str]) -> str:
    """Return the worst of ``severities`` ("info" for none)."""
    return min(severities, key=SEVERITIES.index, default="info")


def probe_report(probe: str, answers: Sequence[Answer]) -> dict[str, Any]:
    """Summarise one probe: its verdict, severity, confidence, auditors and findings."""
    failing = [a for a in answers if a.first("VERDICT") == "fail"]
    verdict = "fail" if answers and 2 * len(failing) >= len(answers) else "pass"
    judged = failing if verdict == "fail" else answers
    return {
        "probe": probe,
        "verdict": verdict,
        "severity": worst([a.first("SEVERITY") or "info" for a in judged]),
        "confidence": round(fmean(a.number("CONFIDENCE", 0.5) for a in answers), 4),
        "auditors": [a.agent for a in answers],
        "findings": [
            {
                "probe": probe,
                "agent": answer.agent,
                "severity": answer.first("SEVERITY") or "info",
                "finding": text,
            }
            for answer in answers
            for text in answer.all("FINDING")
            if normalise_answer(text) not in NO_FINDING
        ],
    }


def risk_of(findings: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Count findings by severity, with the reference's weighted score and the worst level."""
    counts = {severity: 0 for severity in SEVERITIES}
    for finding in findings:
        counts[finding["severity"]] += 1
    return {
        **counts,
        "total": len(findings),
        "weighted_score": sum(RISK_WEIGHTS[s] * n for s, n in counts.items()),
        "level": worst([f["severity"] for f in findings]) if findings else "none",
    }


def verdict_of(reports: Sequence[dict[str, Any]], incomplete: Sequence[str]) -> str:
    """Return pass, conditional, fail or needs_review (see the module docstring)."""
    if not reports:
        return "needs_review"
    failed = [report for report in reports if report["verdict"] == "fail"]
    if any(report["severity"] in BLOCKING for report in failed):
        return "fail"
    return "conditional" if failed or incomplete else "pass"


def assess(reports: Sequence[dict[str, Any]], incomplete: Sequence[str]) -> dict[str, Any]:
    """Return the verdict, confidence, risk, every finding (with its probe) and the probes."""
    findings = [finding for report in reports for finding in report["findings"]]
    confidence = fmean(report["confidence"] for report in reports) if reports else 0.0
    return {
        "verdict": verdict_of(reports, incomplete),
        "confidence": round(confidence, 4),
        "risk": risk_of(findings),
        "findings": findings,
        "probes": [{k: v for k, v in r.items() if k != "findings"} for r in reports],
        "incomplete_probes": list(incomplete),
    }
