"""`tunesmith data prepare|validate|stats|split|dedup|convert|preview`: prepare, check and reshape a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tunesmith.cli.options import ColumnsOpt, FormatOpt, LogsSplitOpt, ModelOpt, SetOption, console
from tunesmith.core.errors import TunesmithError
from tunesmith.models.bundled import BUNDLED_NAME


def _load_options(columns: str | None, logs_split: str):
    from tunesmith.data.formats import LoadOptions, parse_columns

    if logs_split not in ("conversation", "turn"):
        raise TunesmithError(f"--logs-split {logs_split!r}: unknown mode", "use conversation or turn")
    return LoadOptions(columns=parse_columns(columns), logs_split=logs_split)


def data_prepare(
    config: Annotated[Path, typer.Argument(help="DataConfig YAML (see configs/data/ and docs/data.md).")],
    set_: SetOption = None,
) -> None:
    """Validate, dedup and split a dataset into a folder a training run reads.

    Writes train/val/test.jsonl, manifest.json (counts, hashes, config, source), validation.json,
    rejects.jsonl (every dropped record with file, line and reason) and config.yaml, all at once.

    Example: tunesmith data prepare configs/data/sentiment.yaml --set split.seed=1
    """
    from tunesmith.cli.render.data import prepared_lines
    from tunesmith.core.config import load_config
    from tunesmith.data.config import DataConfig
    from tunesmith.data.prepare import prepare_dataset

    result = prepare_dataset(load_config(DataConfig, config, set_), progress=True)
    for line in prepared_lines(result):
        console.print(line, highlight=False)


def data_validate(
    file: Annotated[Path, typer.Argument(help="Training data (JSONL, JSON array, CSV/TSV...).")],
    val: Annotated[
        Path | None,
        typer.Option(
            "--val",
            help="Validation file: checked too, and for train/val leakage (exact and near-duplicates across files).",
        ),
    ] = None,
    model: ModelOpt = BUNDLED_NAME,
    no_tokens: Annotated[
        bool,
        typer.Option(
            "--no-tokens", help="Skip tokenizer checks (context length, special tokens, zero trained tokens)."
        ),
    ] = False,
    max_length: Annotated[
        int | None,
        typer.Option(
            "--max-length",
            help="Token limit per example (default: the model's context); use training's max_seq_length.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    rejects: Annotated[
        Path | None,
        typer.Option("--rejects", help="Write every rejected line verbatim with its reason to this JSONL file."),
    ] = None,
    fmt: FormatOpt = "auto",
    columns: ColumnsOpt = None,
    logs_split: LogsSplitOpt = "conversation",
) -> None:
    """Check a dataset: every error and warning with file, line, field, code and a fix.

    Errors (exit 1): bad JSON/UTF-8, truncated lines, missing or unknown keys/roles, empty content, no
    assistant turn, assistant before user, fewer than 10 examples. Warnings: few examples, very short/long
    answers, exact and near-duplicates, mixed system prompts, examples longer than the context, special tokens
    in content, nothing to train on after loss masking, train/val leakage.
    """
    import json as _json

    from tunesmith.cli.render.data import validation_lines, validation_summary
    from tunesmith.data.checks import DataCheckConfig
    from tunesmith.data.validate import validate_file

    report = validate_file(
        file,
        val,
        model=None if no_tokens else model,
        fmt=fmt,
        config=DataCheckConfig(max_length=max_length),
        rejects_path=rejects,
        options=_load_options(columns, logs_split),
        progress=not as_json,
    )
    if as_json:
        console.print_json(_json.dumps(report.to_json()))
    else:
        for line in validation_lines(report):
            console.print(line, highlight=False)
        console.print(validation_summary(report))
        if rejects:
            console.print(f"rejected lines written to {rejects}")
    if not report.ok:
        from tunesmith.core.errors import DatasetError

        raise DatasetError(
            f"{file}: {len(report.errors)} error(s) found",
            "fix the lines listed above (or drop them: --rejects FILE lists each rejected line with its reason)",
        )


def data_stats(
    file: Annotated[Path, typer.Argument(help="Dataset file.")],
    model: ModelOpt = BUNDLED_NAME,
    epochs: Annotated[int, typer.Option("--epochs", help="Epochs for the training-token/cost estimate.")] = 3,
    price_model: Annotated[
        str | None,
        typer.Option(
            "--price-model", help="Price-table entry to cost (default: the model's own; gpt-4o-mini is shown too)."
        ),
    ] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Save the length histogram as a PNG.")] = None,
    fmt: FormatOpt = "auto",
    columns: ColumnsOpt = None,
    logs_split: LogsSplitOpt = "conversation",
) -> None:
    """Roles, turns, token distributions (real tokenizer + chat template), trained tokens and cost."""
    from tunesmith.cli.render.data import histogram_lines, stats_table
    from tunesmith.data.stats import compute_stats, save_histogram_png

    options = _load_options(columns, logs_split)
    stats = compute_stats(file, model, epochs, price_model, fmt, options, progress=True)
    console.print(stats_table(stats))
    console.print("messages per role: " + ", ".join(f"{k}={v}" for k, v in sorted(stats.roles.items())))
    console.print(f"tokens per example ({stats.model}):")
    for line in histogram_lines(stats):
        console.print(line, highlight=False)
    console.print(f"billed training tokens ({stats.epochs} epochs): {stats.billed_tokens:,}")
    for c in stats.costs:
        usd = f"${c.usd:,.4f}" if c.usd is not None else "n/a"
        console.print(f"  {c.model} ({c.kind}): {usd}  [dim]{c.note}[/]")
    if plot:
        console.print(f"histogram saved to {save_histogram_png(stats, plot)}")


def data_split(
    file: Annotated[Path, typer.Argument(help="Dataset file.")],
    train: Annotated[float, typer.Option("--train", help="Training share.")] = 0.8,
    val: Annotated[float, typer.Option("--val", help="Validation share.")] = 0.1,
    test: Annotated[float, typer.Option("--test", help="Test share.")] = 0.1,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same split.")] = 0,
    stratify: Annotated[
        str | None,
        typer.Option(
            "--stratify",
            help="Keep label shares equal: a metadata key, or `label` (metadata label, else the assistant answer).",
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output folder (default: FILE_split/).")] = None,
    fmt: FormatOpt = "auto",
    columns: ColumnsOpt = None,
    logs_split: LogsSplitOpt = "conversation",
) -> None:
    """Write train/val/test.jsonl + manifest.json; near-duplicates always land in the same split."""
    from pydantic import ValidationError

    from tunesmith.core.config import format_validation_errors
    from tunesmith.core.errors import ConfigError
    from tunesmith.data.split import SplitConfig, split_dataset

    try:
        cfg = SplitConfig(train=train, val=val, test=test, seed=seed, stratify=stratify)
    except ValidationError as exc:
        raise ConfigError(
            "invalid split options:\n" + format_validation_errors(exc),
            "shares are between 0 and 1 and --train + --val + --test must be 1",
        ) from exc
    result = split_dataset(file, cfg, out, fmt, _load_options(columns, logs_split))
    console.print(
        f"wrote {result.out}/: "
        + ", ".join(f"{k}={v}" for k, v in result.counts.items())
        + f" (seed {seed}, {result.manifest['n_groups']} duplicate-free groups)"
    )


def data_dedup(
    file: Annotated[Path, typer.Argument(help="Dataset file.")],
    out: Annotated[Path, typer.Option("--out", help="Deduplicated OpenAI JSONL to write.")],
    threshold: Annotated[
        float,
        typer.Option(
            "--threshold", help="Near-duplicate Jaccard threshold (MinHash over word bigrams of normalised text)."
        ),
    ] = 0.85,
    rejects: Annotated[
        Path | None, typer.Option("--rejects", help="Where removed records go (default: OUT.rejects.jsonl).")
    ] = None,
    fmt: FormatOpt = "auto",
) -> None:
    """Drop exact and near-duplicate examples (the first of each group is kept)."""
    from tunesmith.data.dedup import dedup_file

    if not 0 < threshold <= 1:
        raise TunesmithError(f"--threshold {threshold}: must be in (0, 1]", "e.g. --threshold 0.85")
    r = dedup_file(file, out, threshold, rejects, fmt)
    console.print(
        f"kept {r.kept}; removed {r.removed_exact} exact and {r.removed_near} near duplicates, "
        f"{r.invalid} invalid -> {r.out} (removed: {r.rejects})"
    )


def data_convert(
    file: Annotated[Path, typer.Argument(help="Dataset file.")],
    to: Annotated[str, typer.Option("--to", help="Target format: openai, alpaca or sharegpt.")],
    out: Annotated[Path | None, typer.Option("--out", help="Output JSONL (default: FILE.TO.jsonl).")] = None,
    fmt: FormatOpt = "auto",
    columns: ColumnsOpt = None,
    logs_split: LogsSplitOpt = "conversation",
) -> None:
    """Convert between formats. What the target cannot express (multi-turn/tools/weights into Alpaca,
    weights/tools into ShareGPT) is skipped and written to OUT.rejects.jsonl with the reason, never folded."""
    from tunesmith.data.convert import convert_file

    r = convert_file(file, to, out, fmt, _load_options(columns, logs_split))
    console.print(f"wrote {r.written} record(s) to {r.out}; skipped {r.skipped}, invalid {r.invalid}")
    for reason, n in r.reasons.items():
        console.print(f"  {n} x {reason}", highlight=False)
    if r.rejects:
        console.print(f"skipped records: {r.rejects}")


def data_preview(
    file: Annotated[Path, typer.Argument(help="Dataset file.")],
    model: ModelOpt = BUNDLED_NAME,
    n: Annotated[int, typer.Option("-n", help="How many examples.")] = 3,
    fmt: FormatOpt = "auto",
) -> None:
    """Render examples with the model's chat template; trained tokens (loss mask) in bold green."""
    from tunesmith.cli.render.data import preview_text
    from tunesmith.data.preview import preview_examples

    for p in preview_examples(file, model, n, fmt):
        console.rule(f"line {p.line}: {p.n_tokens} tokens, {p.n_trained} trained")
        console.print(preview_text(p), highlight=False)
