"""Terminal output for evaluations and the decision ladder: rich tables built from plain results."""

from __future__ import annotations

from rich.table import Table

from tunesmith.cli.options import console
from tunesmith.evaluate.schema import EvalReport


def report_table(report: EvalReport) -> Table:
    """Candidates x headline metrics (value [low, high]) plus tokens, latency and cost."""
    table = Table(title=f"{report.n_examples} examples, task {report.task_type}, primary {report.primary_metric}")
    table.add_column("candidate", style="bold")
    for m in report.metrics:
        table.add_column(m, justify="right")
    for col in ("tok in/out", "p50/p95 s", "$/1k", "regr."):
        table.add_column(col, justify="right")
    for c in report.candidates:
        cells = [
            f"{c.metrics[m].value:.3f} [{c.metrics[m].low:.2f},{c.metrics[m].high:.2f}]" if m in c.metrics else "-"
            for m in report.metrics
        ]
        cost = "n/a" if c.cost.cost_per_1k is None else f"{c.cost.cost_per_1k:.4f}"
        table.add_row(
            c.name,
            *cells,
            f"{c.cost.prompt_tokens_mean:.0f}/{c.cost.completion_tokens_mean:.1f}",
            f"{c.cost.latency_p50_s:.2f}/{c.cost.latency_p95_s:.2f}",
            cost,
            f"{c.regression.pass_rate:.0%}" if c.regression else "-",
        )
    return table


def ladder_table(report: EvalReport) -> Table:
    """`tunesmith decide`: one row per rung in ladder order, the recommended one marked."""
    rec = report.recommendation
    assert rec is not None
    table = Table(title=f"the ladder on {report.n_examples} test examples ({rec.metric}; vs best = {rec.best})")
    for col in ("", "rung", rec.metric, "vs best [95% CI]", "$/1k", "p50 s", "payback"):
        table.add_column(col, justify="left" if col in ("", "rung") else "right")
    for r in rec.alternatives:
        table.add_row(
            "->" if r.name == rec.candidate else "",
            r.name,
            f"{r.value:.3f} [{r.low:.2f},{r.high:.2f}]",
            f"{r.diff_vs_best:+.3f} [{r.diff_low:+.2f},{r.diff_high:+.2f}]" + (" *" if r.significantly_worse else ""),
            "n/a" if r.cost_per_1k is None else f"{r.cost_per_1k:.4f}",
            f"{r.latency_p50_s:.2f}",
            "-" if r.payback_queries is None else f"{r.payback_queries:,.0f} q",
        )
    table.caption = "* significantly worse than the best (paired bootstrap, 95%)"
    return table


def print_report(report: EvalReport) -> None:
    """An evaluation report's table, its verdict and where the full report is."""
    console.print(report_table(report))
    console.print(f"\n[bold]verdict:[/] {report.verdict}")
    console.print(f"report: {report.config['output_dir']}/report.html and report.json")
