"""The `tunesmith` command line: one module per lifecycle stage, assembled here into one Typer app.

Each command parses its arguments, loads its config, calls ONE entry point and renders the result. Errors a
user can act on (`TunesmithError`) print their message and hint and exit 1; `--debug` shows the traceback too.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape

from tunesmith import __version__
from tunesmith.cli import advise, augment, data, decide, demo, evaluate, jobs, reference, serve, train
from tunesmith.cli.options import console, err_console
from tunesmith.core.errors import TunesmithError

app = typer.Typer(
    name="tunesmith",
    help="From 'should we fine-tune?' to a served, measured, fine-tuned model.\n\n"
    "Lifecycle: advise -> data -> train -> eval -> serve. `tunesmith demo` runs all of it on the bundled "
    "SmolLM2-135M-Instruct and the example sentiment data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
data_app = typer.Typer(
    help="Load, validate, inspect, split, convert, augment and distill training data.", no_args_is_help=True
)
jobs_app = typer.Typer(
    help="Drive an OpenAI-compatible fine-tuning API (OpenAI, or a `tunesmith serve`) through the official openai SDK.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")
app.add_typer(jobs_app, name="jobs")

_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        console.print(f"tunesmith {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    _state["debug"] = debug


# The commands, in the order `tunesmith --help` lists them (the data and jobs groups come last).
for name, command in [
    ("prepare", data.data_prepare),
    ("validate", data.data_validate),
    ("stats", data.data_stats),
    ("split", data.data_split),
    ("dedup", data.data_dedup),
    ("convert", data.data_convert),
    ("preview", data.data_preview),
    ("augment", augment.augment_cmd),
    ("distill", augment.distill_cmd),
]:
    data_app.command(name)(command)
for name, command in [
    ("train", train.train_cmd),
    ("export", train.export_cmd),
    ("eval", evaluate.eval_cmd),
    ("compare", evaluate.compare_cmd),
    ("decide", decide.decide_cmd),
    ("gate", evaluate.gate_cmd),
    ("advise", advise.advise_cmd),
    ("costs", advise.costs_cmd),
    ("serve", serve.serve_cmd),
    ("deploy", serve.deploy_cmd),
    ("rollback", serve.rollback_cmd),
]:
    app.command(name)(command)
for name, command in [
    ("create", jobs.jobs_create_cmd),
    ("list", jobs.jobs_list_cmd),
    ("show", jobs.jobs_show_cmd),
    ("events", jobs.jobs_events_cmd),
    ("cancel", jobs.jobs_cancel_cmd),
    ("wait", jobs.jobs_wait_cmd),
]:
    jobs_app.command(name)(command)
app.command("demo")(demo.demo_cmd)
app.command("reference", hidden=True)(reference.reference_cmd)


def main() -> None:
    """Console entry point: run the app, turning TunesmithError into message + hint + exit 1."""
    try:
        # Under standalone_mode=False click returns (not raises) the code of a `typer.Exit(code)`.
        rc = app(standalone_mode=False)
        if isinstance(rc, int) and not isinstance(rc, bool):
            sys.exit(rc)
    except TunesmithError as exc:
        if _state["debug"]:
            raise
        # Messages quote user data (e.g. `[/INST]`), which must print as text, not as rich markup.
        err_console.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False)
        if exc.hint:
            err_console.print(f"[yellow]hint:[/] {escape(exc.hint)}", highlight=False)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("interrupted (re-run the same command to resume where it can)")
        sys.exit(130)
    except Exception as exc:  # click usage errors carry their own exit codes
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


__all__ = ["app", "main"]
