"""Questions with a reply format: rendering, reading answers, and the demo agent's answers."""

from __future__ import annotations

from workers.agents import DemoAgent, Question, ReplyLine, read_answer

QUESTION = Question(
    role="You are an auditor.",
    prompt="Review this spec.",
    subject="the spec",
    lines=(
        ReplyLine(label="FINDING", description="one weakness", repeated=True),
        ReplyLine(label="SEVERITY", description="how bad", choices=("low", "high")),
        ReplyLine(label="CONFIDENCE", description="how sure", number=True),
    ),
)


def test_render_lists_every_reply_line() -> None:
    text = QUESTION.render()
    assert text.startswith("Review this spec.")
    assert "FINDING: <one weakness> (one line each" in text
    assert "SEVERITY: <how bad> (one of: low, high)" in text
    assert "CONFIDENCE: <how sure> (a number from 0 to 1)" in text


def test_read_answer_keeps_repeated_lines_and_checks_choices_and_numbers() -> None:
    text = (
        "Some prose first.\n"
        "FINDING: no rate limit\n"
        "**Finding:** secrets in logs\n"
        "SEVERITY: High.\n"
        "SEVERITY: enormous\n"
        "CONFIDENCE: 80%\n"
    )
    answer = read_answer("a", QUESTION, text, 3, 4)
    assert answer.all("FINDING") == ["no rate limit", "secrets in logs"]
    assert answer.first("SEVERITY") == "high"
    assert answer.number("CONFIDENCE", 0.5) == 0.8
    assert (answer.input_tokens, answer.output_tokens) == (3, 4)


def test_read_answer_drops_lines_that_do_not_fit() -> None:
    answer = read_answer("a", QUESTION, "SEVERITY: unclear\nCONFIDENCE: none")
    assert answer.first("SEVERITY") is None
    assert answer.number("CONFIDENCE", 0.5) == 0.5
    assert answer.all("FINDING") == []


async def test_demo_agent_fills_every_line_deterministically() -> None:
    first = await DemoAgent("demo-a").ask(QUESTION)
    again = await DemoAgent("demo-a").ask(QUESTION)
    assert first == again
    assert len(first.all("FINDING")) == 2
    assert first.first("SEVERITY") in ("low", "high")
    assert 0.5 <= first.number("CONFIDENCE", 0.0) < 1.0
