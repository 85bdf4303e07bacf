"""Rich renderings of the data stage's results for the terminal (the CLI prints these)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from tunesmith.data.prepare import PreparedDataset
from tunesmith.data.preview import Preview
from tunesmith.data.report import ValidationReport
from tunesmith.data.stats import DataStats

BAR = "█"


def validation_lines(report: ValidationReport, limit: int = 200) -> list[Text]:
    """One line per issue (errors first): ``severity  file:line field  code: message  hint``."""
    issues = sorted(report.issues, key=lambda i: i.severity != "error")
    out = []
    for i in issues[:limit]:
        line = Text()
        line.append(f"{i.severity:<8}", style="bold red" if i.severity == "error" else "yellow")
        line.append(f"{i.file}" + (f":{i.line}" if i.line else "") + (f" {i.field}" if i.field else ""), style="cyan")
        line.append(f"  {i.code}: ", style="bold")
        line.append(i.message)
        if i.hint:
            line.append(f"  ({i.hint})", style="dim")
        out.append(line)
    if len(issues) > limit:
        out.append(Text(f"... {len(issues) - limit} more (use --json or --rejects for all)"))
    return out


def validation_summary(report: ValidationReport) -> str:
    """``N errors, M warnings`` with per-code counts."""
    counts = ", ".join(f"{k}={v}" for k, v in sorted(report.counts().items()))
    verdict = "[green]OK[/]" if report.ok else "[red]FAILED[/]"
    return f"{verdict}: {len(report.errors)} error(s), {len(report.warnings)} warning(s)" + (
        f" ({counts})" if counts else ""
    )


def prepared_lines(result: PreparedDataset) -> list[str]:
    """What ``tunesmith data prepare`` wrote: rows per split, what was dropped and where, the warnings."""
    c, report = result.counts, result.report
    counts = ", ".join(f"{k}={v}" for k, v in sorted(report.counts().items()))
    return [
        f"[green]prepared[/] {result.output_dir}/: train={c['train']}, val={c['val']}, test={c['test']}",
        f"  read {c['records']} records: dropped {c['invalid']} invalid, {c['exact_duplicates']} exact and "
        f"{c['near_duplicates']} near duplicates -> {result.files['rejects']}",
        f"  checks: {len(report.errors)} error(s), {len(report.warnings)} warning(s)"
        + (f" ({counts})" if counts else "")
        + f" -> {result.files['validation']}",
        f"  manifest (counts, hashes, config, source): {result.files['manifest']}",
    ]


def stats_table(stats: DataStats) -> Table:
    """Distributions of turns and tokens."""
    table = Table(
        title=f"{stats.path}: {stats.n_examples} examples ({stats.n_invalid} invalid skipped), tokenizer {stats.model}"
    )
    table.add_column("per example")
    for col in ("min", "p5", "median", "mean", "p95", "max", "total"):
        table.add_column(col, justify="right")
    for name, d in (
        ("messages", stats.turns),
        ("tokens", stats.tokens),
        ("trained tokens", stats.trained_tokens),
    ):
        table.add_row(
            name,
            *(
                f"{getattr(d, c):,.1f}" if c == "mean" else f"{getattr(d, c):,.0f}"
                for c in ("min", "p5", "median", "mean", "p95", "max", "total")
            ),
        )
    return table


def histogram_lines(stats: DataStats, width: int = 40) -> list[str]:
    """The tokens-per-example histogram as unicode bars."""
    peak = max((c for _, _, c in stats.histogram), default=0) or 1
    return [
        f"{lo:8.0f}-{hi:<8.0f} {BAR * max(int(c / peak * width), 1 if c else 0):<{width}} {c}"
        for lo, hi, c in stats.histogram
    ]


def preview_text(p: Preview) -> Text:
    """The rendered example with trained segments in bold green and the rest dimmed."""
    text = Text()
    for segment, trained in p.segments:
        text.append(segment, style="bold green" if trained else "dim")
    return text
