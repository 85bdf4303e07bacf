"""`tunesmith eval`, `compare` and `gate`: measure candidates on a test set, gate a release on the report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tunesmith.cli.options import SetOption, console
from tunesmith.cli.render.evaluate import print_report


def eval_cmd(
    config: Annotated[Path, typer.Argument(help="EvalConfig YAML (configs/eval/, docs/evaluation.md).")],
    set_: SetOption = None,
) -> None:
    """Compare candidates (zero-shot, few-shot, system prompt, fine-tuned runs, endpoints) on a test set.

    Writes report.json, report.html and a resumable generation cache to output_dir, prints a summary table
    and a verdict. Rerunning after an interruption only generates the missing answers.

    Example: tunesmith eval configs/eval/sentiment.yaml --set limit=50 --set output_dir=runs/eval
    """
    from tunesmith.core.config import load_config
    from tunesmith.evaluate.config import EvalConfig
    from tunesmith.evaluate.run import run_evaluation

    print_report(run_evaluation(load_config(EvalConfig, config, set_)))


def compare_cmd(
    test: Annotated[Path, typer.Option("--test", help="Test set (chat JSONL; last turn = the answer).")],
    candidate: Annotated[
        list[str],
        typer.Option(
            "--candidate",
            "-c",
            help="KIND[:VALUE][,key=value...] "
            "(repeatable): zero-shot | few-shot:k=6[,selection=nearest] | system:prompt_file=P "
            "| run:runs/x | endpoint:model=M,base_url=URL[,api_key_env=VAR]; any: name=LABEL.",
        ),
    ],
    train: Annotated[Path | None, typer.Option("--train", help="Training split (few-shot examples).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("runs/compare"),
    set_: SetOption = None,
) -> None:
    """Short form of `tunesmith eval`: candidates on the command line instead of a YAML file.

    Example: tunesmith compare --test t.jsonl --train tr.jsonl -c zero-shot -c few-shot:k=6 -c run:runs/x
    """
    from tunesmith.evaluate.config import build_compare_config
    from tunesmith.evaluate.run import run_evaluation

    print_report(run_evaluation(build_compare_config(test, candidate, train, out, set_)))


def gate_cmd(
    report: Annotated[Path, typer.Argument(help="report.json of `tunesmith eval` (or its directory).")],
    metric: Annotated[str, typer.Option("--metric", help="Metric the gain is measured on.")] = "accuracy",
    min_gain: Annotated[
        float,
        typer.Option(
            "--min-gain",
            help="Required gain of the fine-tuned run over the best baseline (absolute, e.g. 0.05 = 5 points).",
        ),
    ] = 0.0,
    max_regression: Annotated[
        float,
        typer.Option(
            "--max-regression", help="Largest allowed drop of the regression-suite pass rate or any other metric."
        ),
    ] = 0.02,
) -> None:
    """CI gate: exit 0 when the fine-tuned run beats the best baseline without regressing, else exit 1.

    Example: tunesmith gate runs/eval/report.json --metric accuracy --min-gain 0.05 --max-regression 0.02
    """
    from tunesmith.evaluate.gate import check_gate

    result = check_gate(report, metric=metric, min_gain=min_gain, max_regression=max_regression)
    for line in result.reasons:
        console.print(("[green]" if line.startswith("PASS") else "[red]") + line, highlight=False)
    console.print("[bold green]gate passed[/]" if result.passed else "[bold red]gate failed[/]")
    raise typer.Exit(0 if result.passed else 1)
