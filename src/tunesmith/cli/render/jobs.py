"""A fine-tuning job followed to its end under a progress bar (`tunesmith jobs create|wait`)."""

from __future__ import annotations

from typing import Any

from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from tunesmith.cli.jobs_client import follow_job
from tunesmith.cli.options import console
from tunesmith.core.errors import ServeError


def follow_job_progress(client: Any, job_id: str) -> None:
    """Follow a job's events under a progress bar (loss as its label) and print the fine-tuned model.

    Raises:
        ServeError: the job ended in any state but ``succeeded``.
    """
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        bar = progress.add_task("training", total=None)

        def show(event) -> None:
            data = event.data or {}
            if event.type == "metrics" and data.get("total_steps"):
                progress.update(
                    bar,
                    completed=data.get("step", 0),
                    total=data["total_steps"],
                    description=f"loss {data.get('train_loss', float('nan')):.4f}",
                )
            else:
                progress.console.print(f"  {event.message}")

        job = follow_job(client, job_id, show)
    if job.status != "succeeded":
        message = job.error.message if job.error else "no error recorded"
        raise ServeError(f"job {job_id} {job.status}: {message}", f"see `tunesmith jobs events {job_id}`")
    console.print(
        f"[green]succeeded[/] fine-tuned model: [bold]{job.fine_tuned_model}[/] ({job.trained_tokens} trained tokens)"
    )
