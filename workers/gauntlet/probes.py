"""The gauntlet's adversarial probes, its profiles, and the question each probe asks an auditor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from queue_app.queue import InvalidJob

from ..agents import Question, ReplyLine

#: What can be stress-tested; any other input type is treated as a spec (as the reference does).
INPUT_TYPES = ("spec", "architecture", "policy", "code", "strategy", "contract")
#: Severities from worst to mildest.
SEVERITIES = ("critical", "high", "medium", "low", "info")
VERDICTS = ("pass", "fail")
#: Longest content a gauntlet accepts (characters).
MAX_CONTENT_CHARS = 100_000
DEFAULT_AGENTS = ("anthropic-api",)
DEFAULT_MAX_DURATION_SECONDS = 300.0
MAX_DURATION_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class Probe:
    """One adversarial angle of attack."""

    name: str
    instruction: str


PROBES: dict[str, Probe] = {
    probe.name: probe
    for probe in (
        Probe("assumptions", "Find hidden assumptions that may not hold in practice."),
        Probe("edge_cases", "Find edge cases, failure modes and inputs it does not handle."),
        Probe("security", "Find ways it can be abused, leak data or be attacked."),
        Probe("consistency", "Find contradictions, ambiguities and undefined terms."),
        Probe("adversary", "Act as a motivated adversary: how would you defeat its goal?"),
        Probe("compliance", "Find conflicts with laws, regulations or stated policies."),
        Probe("scale", "Find what breaks under ten times the load, data or users."),
    )
}
#: Probes run by each profile (``payload["profile"]``).
PROFILES: dict[str, tuple[str, ...]] = {
    "quick": ("assumptions", "edge_cases", "security"),
    "default": ("assumptions", "edge_cases", "security", "consistency", "adversary"),
    "thorough": tuple(PROBES),
}

FINDING = ReplyLine(
    label="FINDING", description="one weakness this probe reveals, or none", repeated=True
)
SEVERITY = ReplyLine(
    label="SEVERITY", description="severity of the worst finding", choices=SEVERITIES
)
VERDICT = ReplyLine(
    label="VERDICT", description="pass if the content withstands this probe", choices=VERDICTS
)
CONFIDENCE = ReplyLine(label="CONFIDENCE", description="how sure you are", number=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class GauntletInput:
    """The validated payload of a gauntlet job."""

    gauntlet_id: str
    content: str
    input_type: str
    persona: str
    agents: tuple[str, ...]
    profile: str
    max_duration_seconds: float

    @property
    def probes(self) -> tuple[Probe, ...]:
        """Return the probes of the profile."""
        return tuple(PROBES[name] for name in PROFILES[self.profile])


def read_input(job_id: str, payload: dict[str, Any]) -> GauntletInput:
    """Validate a gauntlet payload.

    Raises:
        InvalidJob: naming the field that is missing or wrong.
    """
    content = payload.get("input_content")
    if not isinstance(content, str) or not content.strip():
        raise InvalidJob("input_content must be a non-empty string")
    if len(content) > MAX_CONTENT_CHARS:
        raise InvalidJob(f"input_content must be at most {MAX_CONTENT_CHARS} characters")
    agents = payload.get("agents") or list(DEFAULT_AGENTS)
    if not isinstance(agents, list) or not all(isinstance(a, str) and a for a in agents):
        raise InvalidJob("agents must be a list of agent names")
    profile = payload.get("profile") or "default"
    if profile not in PROFILES:
        raise InvalidJob(f"profile must be one of {', '.join(PROFILES)}")
    duration = payload.get("max_duration_seconds", DEFAULT_MAX_DURATION_SECONDS)
    if isinstance(duration, bool) or not isinstance(duration, int | float):
        raise InvalidJob("max_duration_seconds must be a number")
    if not 0 < duration <= MAX_DURATION_SECONDS:
        raise InvalidJob(f"max_duration_seconds must be in (0, {MAX_DURATION_SECONDS:g}]")
    input_type = payload.get("input_type")
    return GauntletInput(
        gauntlet_id=str(payload.get("gauntlet_id") or job_id),
        content=content,
        input_type=input_type if input_type in INPUT_TYPES else "spec",
        persona=str(payload.get("persona") or ""),
        agents=tuple(agents),
        profile=profile,
        max_duration_seconds=float(duration),
    )


def probe_question(gauntlet: GauntletInput, probe: Probe) -> Question:
    """Return what an auditor is asked for one probe."""
    who = gauntlet.persona or "a rigorous reviewer"
    role = (
        f"You are an auditor: {who}. You stress-test documents adversarially. Report real "
        "weaknesses only, each in one line; write 'none' when the probe finds nothing."
    )
    prompt = (
        f"Probe '{probe.name}': {probe.instruction}\n"
        f"Stress-test this {gauntlet.input_type}:\n"
        f"<<<\n{gauntlet.content}\n>>>"
    )
    lines = (FINDING, SEVERITY, VERDICT, CONFIDENCE)
    return Question(role=role, prompt=prompt, lines=lines, subject=f"{probe.name} probe")
