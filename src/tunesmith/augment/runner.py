"""Run a batch of teacher requests concurrently under one progress bar showing tokens and estimated cost."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tunesmith.augment.client import CachedResponse, TeacherClient, TeacherRequestError


@dataclass
class Job:
    """One request: the chat messages and any parameter overrides (e.g. a lower temperature for a judge)."""

    messages: list[dict[str, Any]]
    params: dict[str, Any] = field(default_factory=dict)


def usage_line(clients: list[TeacherClient]) -> str:
    """``tokens 1,234 in / 567 out, cost $0.0012`` (``cost n/a`` when a model has no price)."""
    tin = sum(c.stats.prompt_tokens for c in clients)
    tout = sum(c.stats.completion_tokens for c in clients)
    costs = [c.cost_usd for c in clients]
    cost = "n/a" if any(c is None for c in costs) else f"${sum(costs):.4f}"  # type: ignore[arg-type]
    hits = sum(c.stats.cache_hits for c in clients)
    return f"tokens {tin:,} in / {tout:,} out, cost {cost}, cached {hits}"


async def run_jobs(
    client: TeacherClient, jobs: dict[Hashable, Job], label: str, *, show_progress: bool = True
) -> dict[Hashable, CachedResponse | TeacherRequestError]:
    """Send every job through ``client``; a job's failure is returned as its TeacherRequestError.

    Fatal errors (bad key, unknown model: EndpointError) propagate and stop the batch.
    """
    results: dict[Hashable, CachedResponse | TeacherRequestError] = {}
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[usage]}"),
    )
    with Progress(*columns, disable=not show_progress, transient=False) as progress:
        task = progress.add_task(label, total=len(jobs), usage=usage_line([client]))

        async def one(key: Hashable, job: Job) -> None:
            try:
                results[key] = await client.complete(job.messages, **job.params)
            except TeacherRequestError as exc:
                results[key] = exc
            progress.update(task, advance=1, usage=usage_line([client]))

        pending = [asyncio.ensure_future(one(k, j)) for k, j in jobs.items()]
        try:
            await asyncio.gather(*pending)
        finally:
            for p in pending:
                p.cancel()
    return results
