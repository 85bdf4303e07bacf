"""`tunesmith jobs create|list|show|events|cancel|wait`: drive an OpenAI-compatible fine-tuning API.

The client (and with it the openai SDK, about a second to import) is imported inside the commands, so the
other commands start without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tunesmith.cli.options import ApiKeyOption, BaseUrlOption, console
from tunesmith.models.bundled import BUNDLED_NAME


def jobs_create_cmd(
    training_file: Annotated[
        Path, typer.Argument(help="Training data (OpenAI chat JSONL; DPO JSONL with --method dpo).")
    ],
    model: Annotated[str, typer.Option("--model", help="Base model.")] = BUNDLED_NAME,
    validation_file: Annotated[Path | None, typer.Option("--validation-file", help="Validation.")] = None,
    suffix: Annotated[str | None, typer.Option("--suffix", help="Added to the model's name.")] = None,
    method: Annotated[str, typer.Option("--method", help="supervised or dpo.")] = "supervised",
    epochs: Annotated[int | None, typer.Option("--epochs", help="n_epochs (default: auto).")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="batch_size (auto).")] = None,
    lr_multiplier: Annotated[float | None, typer.Option("--lr-multiplier", help="LR multiplier.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Training seed.")] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Follow events until the job ends.")] = True,
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Validate locally, upload, create a fine-tuning job, and follow it to the fine-tuned model name.

    Example: tunesmith jobs create train.jsonl --base-url http://127.0.0.1:8000/v1 --suffix support
    """
    from tunesmith.cli.jobs_client import JobSpec, make_client, submit_job
    from tunesmith.cli.render.jobs import follow_job_progress

    hp = {
        k: v
        for k, v in (("n_epochs", epochs), ("batch_size", batch_size), ("learning_rate_multiplier", lr_multiplier))
        if v is not None
    }
    client = make_client(base_url, api_key)
    job = submit_job(client, JobSpec(training_file, model, validation_file, suffix, method, hp, seed))
    console.print(f"created {job.id} ({job.status}) on {job.model}")
    if wait:
        follow_job_progress(client, job.id)


def jobs_list_cmd(
    limit: Annotated[int, typer.Option("--limit", help="How many.")] = 20,
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """List fine-tuning jobs, newest first."""
    from tunesmith.cli.jobs_client import call, make_client

    client = make_client(base_url, api_key)
    for job in call(client.fine_tuning.jobs.list, limit=limit).data:
        console.print(f"{job.id}  {job.status:<16} {job.model}  {job.fine_tuned_model or ''}")


def jobs_show_cmd(
    job_id: Annotated[str, typer.Argument(help="Job id.")], base_url: BaseUrlOption = None, api_key: ApiKeyOption = None
) -> None:
    """Show one job as JSON."""
    from tunesmith.cli.jobs_client import call, make_client

    job = call(make_client(base_url, api_key).fine_tuning.jobs.retrieve, job_id)
    console.print_json(job.model_dump_json())


def jobs_events_cmd(
    job_id: Annotated[str, typer.Argument(help="Job id.")],
    limit: Annotated[int, typer.Option("--limit", help="How many (newest).")] = 50,
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Print a job's events, oldest first."""
    from tunesmith.cli.jobs_client import call, make_client

    page = call(make_client(base_url, api_key).fine_tuning.jobs.list_events, job_id, limit=limit)
    for event in reversed(page.data):
        console.print(f"[{event.type or 'message'}] {event.message}", highlight=False, markup=False)


def jobs_cancel_cmd(
    job_id: Annotated[str, typer.Argument(help="Job id.")], base_url: BaseUrlOption = None, api_key: ApiKeyOption = None
) -> None:
    """Cancel a job (its training process stops within seconds)."""
    from tunesmith.cli.jobs_client import call, make_client

    job = call(make_client(base_url, api_key).fine_tuning.jobs.cancel, job_id)
    console.print(f"{job.id}: {job.status}")


def jobs_wait_cmd(
    job_id: Annotated[str, typer.Argument(help="Job id.")], base_url: BaseUrlOption = None, api_key: ApiKeyOption = None
) -> None:
    """Follow a job's events with a progress bar until it ends; print the fine-tuned model."""
    from tunesmith.cli.jobs_client import make_client
    from tunesmith.cli.render.jobs import follow_job_progress

    follow_job_progress(make_client(base_url, api_key), job_id)
