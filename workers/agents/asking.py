"""Questions with a fixed reply format, asked of any agent, and the reading of their answers.

A ``Question`` names the lines the agent must write (``FINDING: ...``, ``VERDICT: pass``); the
same parser reads the answer of a provider and of the offline demo agent, so explanations and
stress tests run one code path whichever agent answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .consensus import normalise_answer

#: Longest value kept from one reply line.
MAX_VALUE_CHARS = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplyLine:
    """One line the agent must write as ``LABEL: value``."""

    #: Upper-case label, e.g. ``FINDING``.
    label: str
    #: What the value should say (shown to the agent).
    description: str
    #: When set, the value must be one of these (compared normalised); others are dropped.
    choices: tuple[str, ...] = ()
    #: The value is a number from 0 to 1 ("80" or "80%" read as 0.8).
    number: bool = False
    #: The line may appear several times (a list of findings, factors, ...).
    repeated: bool = False

    def instruction(self) -> str:
        """Return how this line is described to the agent."""
        text = f"{self.label}: <{self.description}>"
        if self.choices:
            text += f" (one of: {', '.join(self.choices)})"
        if self.number:
            text += " (a number from 0 to 1)"
        if self.repeated:
            text += " (one line each; repeat the line as often as needed)"
        return text


@dataclass(frozen=True, slots=True, kw_only=True)
class Question:
    """A task for an agent: its role, the prompt and the reply lines expected."""

    #: System instructions (the agent's role, e.g. an auditor with a persona).
    role: str
    prompt: str
    lines: tuple[ReplyLine, ...]
    #: A few words naming what the question is about (the demo agent quotes it).
    subject: str = ""

    def render(self) -> str:
        """Return the prompt followed by the reply format."""
        format_lines = "\n".join(line.instruction() for line in self.lines)
        return f"{self.prompt}\n\nEnd your reply with these lines:\n{format_lines}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """What one agent answered: its text and the values of each reply line."""

    agent: str
    text: str
    #: Label -> values in the order written (numbers as text, choices normalised).
    values: dict[str, list[str]] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0

    def all(self, label: str) -> list[str]:
        """Return every value written for ``label``."""
        return list(self.values.get(label, []))

    def first(self, label: str, default: str | None = None) -> str | None:
        """Return the first value of ``label``, or ``default``."""
        found = self.values.get(label)
        return found[0] if found else default

    def number(self, label: str, default: float) -> float:
        """Return the number written for ``label`` (0..1), or ``default``."""
        value = self.first(label)
        return float(value) if value is not None else default


def _line_pattern(label: str) -> re.Pattern[str]:
    # Markdown emphasis around the label or the value ("**Finding:** x") is not part of it.
    return re.compile(
        rf"^\W*{re.escape(label)}[\s*_]*:[\s*_]*(.+?)[\s*_]*$", re.IGNORECASE | re.MULTILINE
    )


def _number(raw: str) -> str | None:
    match = re.search(r"\d*\.?\d+", raw)
    if match is None:
        return None
    value = float(match.group())
    if value > 1:  # "80" or "80%" means a percentage
        value /= 100
    return str(min(value, 1.0))


def _value(line: ReplyLine, raw: str) -> str | None:
    if line.number:
        return _number(raw)
    if line.choices:
        chosen = normalise_answer(raw)
        known = {normalise_answer(choice): choice for choice in line.choices}
        return known.get(chosen) or next(
            (choice for key, choice in known.items() if chosen.startswith(key)), None
        )
    return raw[:MAX_VALUE_CHARS]


def read_answer(
    agent: str, question: Question, text: str, input_tokens: int = 0, output_tokens: int = 0
) -> Answer:
    """Read the reply lines of ``question`` out of an agent's ``text``.

    Values that do not fit their line (a choice not offered, a number missing) are dropped; a
    line written once keeps its last value unless it is ``repeated``.
    """
    values: dict[str, list[str]] = {}
    for line in question.lines:
        found = [
            value
            for raw in _line_pattern(line.label).findall(text)
            if (value := _value(line, raw)) is not None
        ]
        if found:
            values[line.label] = found if line.repeated else found[-1:]
    return Answer(
        agent=agent,
        text=text,
        values=values,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
    )
