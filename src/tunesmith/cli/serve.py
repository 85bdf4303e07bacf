"""`tunesmith serve`, `deploy` and `rollback`: run the OpenAI-compatible server, point aliases at models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tunesmith.cli.options import DataDirOption, DbUrlOption, SetOption, console
from tunesmith.core.config import apply_override, validate_config
from tunesmith.serve.settings import ServeSettings, keys_from_env

_SERVE = ServeSettings.model_fields  # the flags' defaults


def serve_cmd(
    host: Annotated[str, typer.Option("--host", help="Interface (non-loopback: needs keys).")] = _SERVE["host"].default,
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = _SERVE["port"].default,
    data_dir: DataDirOption = _SERVE["data_dir"].default,
    api_key: Annotated[
        list[str] | None,
        typer.Option("--api-key", help="Accepted Bearer key (repeatable; also $TUNESMITH_API_KEYS, comma-separated)."),
    ] = None,
    database_url: DbUrlOption = None,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help="Base model to offer (repeatable; default: bundled smollm2-135m-instruct)."),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="Chat engine: continuous (batching on this machine), static, or vllm (GPU; needs the "
            "vllm package, docs/generation.md).",
        ),
    ] = _SERVE["engine"].default,
    set_: SetOption = None,
) -> None:
    """Serve an OpenAI-compatible API: files, fine-tuning jobs, chat completions, models, aliases.

    Code written for OpenAI's fine-tuning API runs unchanged with base_url="http://HOST:PORT/v1".
    Jobs train in a subprocess (`tunesmith train`); queued jobs survive restarts and running jobs resume
    from their last checkpoint. Walkthrough: docs/server.md.

    Examples: tunesmith serve --port 8000 --api-key sk-local-123 --set batch_window_ms=5
              tunesmith serve --engine vllm   (on a GPU machine with the vllm package)
    """
    from tunesmith.serve.server import run_server

    data = {
        "host": host,
        "port": port,
        "data_dir": str(data_dir),
        "database_url": database_url,
        "api_keys": list(api_key or []) + keys_from_env(),
        "engine": engine,
    }
    if model:
        data["base_models"] = list(model)
    for item in set_ or []:
        apply_override(data, item)
    settings = validate_config(
        ServeSettings, data, "tunesmith serve", "fix the flags listed (`tunesmith serve --help`)"
    )
    console.print(
        f"tunesmith serve on http://{settings.host}:{settings.port}/v1 (data: {settings.data_dir}, "
        f"auth: {'on' if settings.api_keys else 'off'})"
    )
    run_server(settings)


def deploy_cmd(
    model: Annotated[
        str,
        typer.Argument(
            help="Model, ft: model or checkpoint name, a local `tunesmith "
            "train` run directory, or a recipe YAML (`tunesmith decide` writes "
            "one per rung), to point the alias at."
        ),
    ],
    alias: Annotated[str, typer.Option("--alias", help="The stable name clients use as model=.")],
    data_dir: DataDirOption = _SERVE["data_dir"].default,
    database_url: DbUrlOption = None,
    require_report: Annotated[
        Path | None, typer.Option("--require-report", help="Only deploy if this evaluation report passes the gate.")
    ] = None,
    metric: Annotated[str | None, typer.Option("--metric", help="Gate metric (--require-report).")] = None,
    min_gain: Annotated[float | None, typer.Option("--min-gain", help="Gate: least gain over the baseline.")] = None,
    max_regression: Annotated[
        float | None, typer.Option("--max-regression", help="Gate: largest allowed regression.")
    ] = None,
) -> None:
    """Point an alias at a model or a recipe; every change is recorded (who, when, from, to). Takes effect at once.

    A recipe (base model or run + system prompt + few-shot + JSON schema + RAG) is checked, frozen as a copy in
    the data dir, and applied server-side to every request naming the alias (docs/server.md).

    Examples: tunesmith deploy ft:smollm2-135m-instruct:support:ftjob-abc --alias support-bot
              tunesmith deploy runs/demo/train --alias sentiment --data-dir runs/demo/serve
              tunesmith deploy runs/decide/recipes/structured.yaml --alias sentiment
    """
    import getpass

    from tunesmith.serve.deploy import GateSpec, check_deploy_gate, deploy_alias, open_store

    if require_report is not None:
        for reason in check_deploy_gate(GateSpec(require_report, metric, min_gain, max_regression)):
            console.print(f"  gate: {reason}")
    db, settings = open_store(data_dir, database_url)
    if Path(model).is_dir():  # a run directory: stored absolute so the server finds it from anywhere
        model = str(Path(model).resolve())
    change = deploy_alias(db, settings, alias, model, getpass.getuser(), allow_run_dirs=True)
    console.print(f"[green]deployed[/] {alias} -> {change.to_target} (was {change.from_target or 'unset'})")


def rollback_cmd(
    alias: Annotated[str, typer.Argument(help="The alias to point back at its previous target.")],
    data_dir: DataDirOption = _SERVE["data_dir"].default,
    database_url: DbUrlOption = None,
) -> None:
    """Restore an alias's previous target (recorded like a deploy).

    Example: tunesmith rollback support-bot --data-dir tunesmith-data
    """
    import getpass

    from tunesmith.serve.deploy import open_store
    from tunesmith.store.repo import rollback_alias

    db, _ = open_store(data_dir, database_url)
    change = rollback_alias(db, alias, getpass.getuser())
    console.print(f"[green]rolled back[/] {alias} -> {change.to_target} (was {change.from_target})")
