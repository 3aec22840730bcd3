"""Run a gauntlet: every auditor answers every probe of the profile, within a bounded duration."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from queue_app.queue import is_retryable_error

from ..agents import Agent, Answer
from .assessment import probe_report
from .probes import GauntletInput, Probe, probe_question

#: Questions one gauntlet has in flight at once (provider rate limits).
MAX_PARALLEL_ASKS = 4

OnProbe = Callable[[dict[str, Any]], Awaitable[None]]


async def run_probes(
    gauntlet: GauntletInput, auditors: list[Agent], on_probe: OnProbe
) -> tuple[list[dict[str, Any]], list[str]]:
    """Ask the probes until done or out of time; return the probe reports and unfinished probes.

    ``on_probe`` receives each probe's report as soon as all its auditors answered.

    Raises:
        Exception: the most final agent error, when no auditor answered at all.
    """
    slots = asyncio.Semaphore(MAX_PARALLEL_ASKS)

    async def ask(probe: Probe, agent: Agent) -> tuple[str, Answer | Exception]:
        async with slots:
            try:
                return probe.name, await agent.ask(probe_question(gauntlet, probe))
            except Exception as error:  # kept: raised below if no auditor answered at all
                return probe.name, error

    tasks = [asyncio.create_task(ask(p, a)) for p in gauntlet.probes for a in auditors]
    answers: dict[str, list[Answer]] = {probe.name: [] for probe in gauntlet.probes}
    waiting = dict.fromkeys(answers, len(auditors))
    errors: list[Exception] = []
    try:
        async with asyncio.timeout(gauntlet.max_duration_seconds):
            for finished in asyncio.as_completed(tasks):
                name, outcome = await finished
                waiting[name] -= 1
                if isinstance(outcome, Exception):
                    errors.append(outcome)
                else:
                    answers[name].append(outcome)
                if not waiting[name] and answers[name]:
                    await on_probe(probe_report(name, answers[name]))
    except TimeoutError:
        pass  # the duration is bounded: what finished counts, the rest is reported incomplete
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if errors and not any(answers.values()):
        raise next((error for error in errors if not is_retryable_error(error)), errors[0])
    reports = [probe_report(name, found) for name, found in answers.items() if found]
    return reports, [name for name, left in waiting.items() if left]
