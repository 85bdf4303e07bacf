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
