"""Open the configured teacher and run a batch of its requests under one progress bar (tokens, cost).

A teacher is an OpenAI-compatible endpoint (:class:`~tunesmith.augment.client.TeacherClient`: concurrent
requests, retries) or, with ``base_url: local``, a model on this machine answered by tunesmith's generation
engine (:class:`~tunesmith.augment.local.LocalTeacher`); both cache every answer the same way.
"""

from __future__ import annotations

from collections.abc import Hashable

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tunesmith.augment.client import CachedResponse, Job, RequestCache, TeacherClient, TeacherRequestError
from tunesmith.augment.config import TeacherSettings, is_local
from tunesmith.augment.local import LocalTeacher

Teacher = TeacherClient | LocalTeacher


def open_teacher(settings: TeacherSettings, cache: RequestCache, role: str = "teacher") -> Teacher:
    """The teacher ``settings`` describe; use it as ``async with open_teacher(...) as teacher``.

    Raises:
        ModelError: a local ``settings.model`` this machine does not have (``role`` names the config key).
    """
    return LocalTeacher(settings, cache, role) if is_local(settings) else TeacherClient(settings, cache)


def usage_line(clients: list[Teacher]) -> str:
    """``tokens 1,234 in / 567 out, cost $0.0012`` (``cost n/a`` when a model has no price)."""
    tin = sum(c.stats.prompt_tokens for c in clients)
    tout = sum(c.stats.completion_tokens for c in clients)
    costs = [c.cost_usd for c in clients]
    cost = "n/a" if any(c is None for c in costs) else f"${sum(costs):.4f}"  # type: ignore[arg-type]
    hits = sum(c.stats.cache_hits for c in clients)
    return f"tokens {tin:,} in / {tout:,} out, cost {cost}, cached {hits}"


async def run_jobs(
    client: Teacher, jobs: dict[Hashable, Job], label: str, *, show_progress: bool = True
) -> dict[Hashable, CachedResponse | TeacherRequestError]:
    """Send every job through ``client``; a job's failure is returned as its TeacherRequestError.

    Fatal errors (bad key, unknown model: EndpointError; a local model that cannot load: ModelError)
    propagate and stop the batch.
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

        def done(key: Hashable, result: CachedResponse | TeacherRequestError) -> None:
            results[key] = result
            progress.update(task, advance=1, usage=usage_line([client]))

        await client.complete_all(jobs, done)
    return results
