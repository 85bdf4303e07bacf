"""`tunesmith advise` and `tunesmith costs`: the guides' rules and the return on fine-tuning, before any data work."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tunesmith.cli.options import SetOption, console


def advise_cmd(
    profile: Annotated[Path | None, typer.Argument(help="TaskProfile YAML (see docs/advise.md).")] = None,
    interactive: Annotated[bool, typer.Option("--interactive", "-i", help="Answer questions here.")] = False,
    set_: SetOption = None,
) -> None:
    """Should you prompt, add few-shot examples, retrieve (RAG) or fine-tune? The guides' rules, as code.

    Example: tunesmith advise profile.yaml --set n_examples=2000 ; tunesmith advise --interactive
    """
    from tunesmith.advise.decide import recommend
    from tunesmith.advise.profile import TaskProfile, ask_profile
    from tunesmith.core.config import load_config

    task = ask_profile() if interactive else load_config(TaskProfile, profile, set_)
    advice = recommend(task)
    method = f" ({advice.method})" if advice.method else ""
    also = f" + {', '.join(advice.also)}" if advice.also else ""
    console.print(f"[bold]recommendation:[/] {advice.approach}{method}{also}")
    for reason in advice.reasons:
        console.print(f"  - {reason}", highlight=False)
    console.print("[bold]try first:[/]")
    for i, step in enumerate(advice.try_first, 1):
        console.print(f"  {i}. {step}", highlight=False)


def costs_cmd(
    queries_per_day: Annotated[float, typer.Option("--queries-per-day", help="Traffic.")] = 100_000,
    large: Annotated[
        str, typer.Option("--large", help="MODEL:PROMPT_TOKENS:COMPLETION_TOKENS of the prompted large model.")
    ] = "gpt-4o:2000:500",
    small: Annotated[
        str,
        typer.Option(
            "--small",
            help="MODEL:PROMPT_TOKENS:COMPLETION_TOKENS of the "
            "fine-tuned small model (ft:BASE: BASE's training price).",
        ),
    ] = "ft:gpt-4o-mini:500:400",
    trained_tokens: Annotated[float, typer.Option("--trained-tokens", help="Examples x tokens x epochs.")] = 3e6,
    training_cost: Annotated[
        float | None, typer.Option("--training-cost", help="USD; overrides the trained-tokens estimate.")
    ] = None,
    from_report: Annotated[
        Path | None,
        typer.Option(
            "--from-report", help="Use the tokens per query measured in this report.json (best baseline vs fine-tuned)."
        ),
    ] = None,
    prices: Annotated[Path | None, typer.Option("--prices", help="Price table YAML.")] = None,
) -> None:
    """Return on fine-tuning: daily cost of a prompt-heavy large model vs a fine-tuned small one, break-even.

    The defaults are the guides' worked example (2,000 + 500 tokens on a large model vs 500 + 400 on a
    fine-tuned small one at 100k queries/day). Example: tunesmith costs --from-report runs/eval/report.json
    """
    from tunesmith.advise import costs
    from tunesmith.cli.render.advise import roi_summary, roi_table

    inp = costs.RoiInput(
        large=costs.parse_workload(large, "--large"),
        small=costs.parse_workload(small, "--small"),
        queries_per_day=queries_per_day,
        trained_tokens=trained_tokens,
        training_cost=training_cost,
    )
    if from_report is not None:
        inp = costs.roi_from_report(from_report, base=inp)
    roi = costs.estimate_roi(inp, costs.load_price_table(prices))
    console.print(roi_table(inp, roi))
    console.print(roi_summary(roi))
