"""The `tunesmith` command line. Each command parses its arguments, calls ONE entry point, prints the result.

Errors a user can act on (`TunesmithError`) print their message and hint and exit 1; `--debug` shows the
traceback too.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tunesmith import __version__
from tunesmith.errors import TunesmithError

console = Console(stderr=False)
err_console = Console(stderr=True)

app = typer.Typer(
    name="tunesmith",
    help="From 'should we fine-tune?' to a served, measured, fine-tuned model.\n\n"
    "Lifecycle: advise -> data -> train -> eval -> serve. `tunesmith demo` runs all of it on the bundled "
    "SmolLM2-135M-Instruct and the example sentiment data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
data_app = typer.Typer(help="Load, validate, inspect, split, convert, augment and distill training data.",
                       no_args_is_help=True)
jobs_app = typer.Typer(help="Drive an OpenAI-compatible fine-tuning API (OpenAI, or a `tunesmith serve`) "
                       "through the official openai SDK.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(jobs_app, name="jobs")

_state = {"debug": False}

SetOption = Annotated[list[str] | None, typer.Option("--set", help="Override a config key: --set lora.r=8 "
                                                     "(repeatable; the value is parsed as YAML).")]


def _version(value: bool) -> None:
    if value:
        console.print(f"tunesmith {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    _state["debug"] = debug


# ---------------------------------------------------------------- data (tunesmith data ...)


# ---------------------------------------------------------------- data augment / distill


# ---------------------------------------------------------------- train / export
@app.command("train")
def train_cmd(
    config: Annotated[Path, typer.Argument(help="TrainConfig YAML (see configs/train/ and docs/training.md).")],
    set_: SetOption = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the newest checkpoints/checkpoint-N "
                                         "(same data order, optimizer and scheduler state).")] = False,
) -> None:
    """Fine-tune a model (LoRA by default) and write a run directory.

    The run directory (output_dir) gets adapter/ (or model/ for method: full), config.yaml, tokenizer/,
    metrics.jsonl (train/valid loss and token accuracy as training goes), checkpoints/ and run.json.
    Works unchanged under `torchrun --nproc_per_node N -m tunesmith train CONFIG` (docs/distributed.md).

    Example: tunesmith train configs/train/lora.yaml --set epochs=2 --set lora.r=8
    """
    from tunesmith.config import load_config
    from tunesmith.train.config import TrainConfig
    from tunesmith.train.run import run_training

    cfg = load_config(TrainConfig, config, set_)
    result = run_training(cfg, resume=resume)
    weights = result.adapter_dir or result.model_dir
    console.print(f"[green]trained[/] {result.method} on {result.train_examples} examples: {result.steps} steps, "
                  f"{result.trained_tokens} trained tokens in {result.seconds:.0f}s -> {weights}")
    for key, value in result.final_metrics.items():
        console.print(f"  {key}: {value:.4f}")


@app.command("export")
def export_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `tunesmith train`.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the exported model.")],
    merge: Annotated[bool, typer.Option("--merge/--no-merge", help="Merge the LoRA adapter into full "
                                        "weights (safetensors + tokenizer).")] = True,
    prompts: Annotated[int, typer.Option("--parity-prompts", help="Validation prompts for the greedy parity "
                                         "check of merged vs adapter model (0: skip).")] = 8,
) -> None:
    """Merge a run's adapter into full weights and check greedy outputs match the adapter model.

    Example: tunesmith export runs/train --merge --out runs/train-merged
    """
    from tunesmith.train.export import export_run

    result = export_run(run_dir, out, merge=merge, parity_prompts=prompts)
    console.print(f"[green]exported[/] {result.out_dir}")
    if result.parity_total:
        console.print(f"  parity: {result.parity_matches}/{result.parity_total} greedy outputs identical")



# ---------------------------------------------------------------- evaluate / gate / advise / costs


# ---------------------------------------------------------------- serve / deploy / rollback / jobs


# ---------------------------------------------------------------- demo


def main() -> None:
    """Console entry point: run the app, turning TunesmithError into message + hint + exit 1."""
    try:
        app(standalone_mode=False)
    except TunesmithError as exc:
        if _state["debug"]:
            raise
        err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False, markup=True)
        if exc.hint:
            err_console.print(f"[yellow]hint:[/] {exc.hint}", highlight=False)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors carry their own exit codes
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


__all__ = ["app", "main", "Path"]
