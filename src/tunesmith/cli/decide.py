"""`tunesmith decide`: run the decision ladder on your data and recommend a rung."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tunesmith.cli.options import SetOption, as_override, console


def decide_cmd(
    config: Annotated[Path | None, typer.Argument(help="DecideConfig YAML (flags and --set override it).")] = None,
    train: Annotated[Path | None, typer.Option("--train", help="Training split (chat JSONL).")] = None,
    val: Annotated[Path | None, typer.Option("--val", help="Validation split (early stopping).")] = None,
    test: Annotated[Path | None, typer.Option("--test", help="Held-out test split every rung is measured on.")] = None,
    data: Annotated[Path | None, typer.Option("--data", help="One file to split 80/10/10 instead.")] = None,
    docs: Annotated[Path | None, typer.Option("--docs", help="Documents for the RAG rung (folder or JSONL).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output directory (default runs/decide).")] = None,
    budget_minutes: Annotated[float | None, typer.Option("--budget-minutes", help="Training time budget.")] = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps", help="Training step budget.")] = None,
    set_: SetOption = None,
) -> None:
    """Run the decision ladder on your data and recommend the cheapest option as good as the best.

    Measures, on the held-out test set: prompt (zero-shot), structured output (JSON Schema inferred from the
    training answers), few-shot (nearest examples), RAG (with --docs), a LoRA fine-tune and fine-tune +
    structured. Recommends the cheapest rung not significantly worse than the best (paired bootstrap, margin
    0.02), and writes report.json, report.html and one deployable recipe per rung (recipes/*.yaml).

    Example: tunesmith decide --train t.jsonl --val v.jsonl --test x.jsonl --docs kb.jsonl --out runs/decide
    Then:    tunesmith deploy runs/decide/recipes/rag.yaml --alias kb-bot
    """
    from tunesmith.cli.render.evaluate import ladder_table, report_table
    from tunesmith.core.config import load_config
    from tunesmith.ladder.config import DecideConfig
    from tunesmith.ladder.run import run_decision

    flags = {
        "train_file": train,
        "val_file": val,
        "test_file": test,
        "data_file": data,
        "docs": docs,
        "output_dir": out,
        "budget_minutes": budget_minutes,
        "max_steps": max_steps,
    }
    overrides = [as_override(k, v) for k, v in flags.items() if v is not None] + list(set_ or [])
    cfg = load_config(DecideConfig, config, overrides)

    def show(event: str, payload) -> None:
        if event == "step":
            console.print(f"[bold]decide:[/] {payload}")
        elif event == "report":
            console.print(report_table(payload))

    report = run_decision(cfg, show)
    rec = report.recommendation
    console.print(ladder_table(report))
    console.print(f"\n[bold]recommendation: {rec.approach}[/] ({rec.candidate}) — {rec.reason}")
    chosen = next(r for r in rec.alternatives if r.name == rec.candidate)
    if chosen.recipe:
        console.print(f"deploy it: tunesmith deploy {chosen.recipe} --alias NAME")
    console.print(f"report: {cfg.output_dir}/report.html and report.json")
