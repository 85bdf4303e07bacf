"""The `tunesmith` command line. Each command parses its arguments, calls ONE entry point, prints the result.

Errors a user can act on (`TunesmithError`) print their message and hint and exit 1; `--debug` shows the
traceback too.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from tunesmith import __version__
from tunesmith.errors import TunesmithError

# Piped output (make demo | tee, CI logs) has no terminal width; rich would wrap tables at 80 columns.
console = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 150)
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

FormatOpt = Annotated[str, typer.Option("--format", "-f", help="Input format: auto (detected from the "
                                        "extension "
                                        "and keys), openai, alpaca, sharegpt, csv, logs.")]
ColumnsOpt = Annotated[str | None, typer.Option("--columns", help="CSV/TSV column mapping, e.g. "
                                                "user=question,assistant=answer,system=sys (default: guessed "
                                                "from header names). Other columns become metadata.")]
LogsSplitOpt = Annotated[str, typer.Option("--logs-split", help="Conversation logs (--format logs): "
                                           "`conversation` = one example per conversation; `turn` = one per "
                                           "assistant turn with its history (earlier turns get weight 0).")]
ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Model whose tokenizer, chat template and "
                                       "context window are used (name or local dir; default: bundled "
                                       "SmolLM2). "
                                       "OpenAI models cannot be tokenized offline: tiktoken downloads its "
                                       "vocabulary, which tunesmith never does.")]


def _load_options(columns: str | None, logs_split: str):
    from tunesmith.data.formats import LoadOptions, parse_columns

    if logs_split not in ("conversation", "turn"):
        raise TunesmithError(f"--logs-split {logs_split!r}: unknown mode", "use conversation or turn")
    return LoadOptions(columns=parse_columns(columns), logs_split=logs_split)


@data_app.command("validate")
def data_validate(
    file: Annotated[Path, typer.Argument(help="Training data (JSONL, JSON array, CSV/TSV...).")],
    val: Annotated[Path | None, typer.Option("--val", help="Validation file: checked too, and for "
                                             "train/val leakage (exact and near-duplicates across "
                                             "files).")] = None,
    model: ModelOpt = "smollm2-135m-instruct",
    no_tokens: Annotated[bool, typer.Option("--no-tokens", help="Skip tokenizer checks (context length, "
                                            "special tokens, zero trained tokens).")] = False,
    max_length: Annotated[int | None, typer.Option("--max-length", help="Token limit per example (default: "
                                                   "the model's context); use training's "
                                                   "max_seq_length.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    rejects: Annotated[Path | None, typer.Option("--rejects", help="Write every rejected line verbatim with "
                                                 "its reason to this JSONL file.")] = None,
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

    from tunesmith.data.checks import DataCheckConfig
    from tunesmith.data.render import validation_lines, validation_summary
    from tunesmith.data.validate import validate_file

    report = validate_file(file, val, model=None if no_tokens else model, fmt=fmt,
                           config=DataCheckConfig(max_length=max_length), rejects_path=rejects,
                           options=_load_options(columns, logs_split), progress=not as_json)
    if as_json:
        console.print_json(_json.dumps(report.to_json()))
    else:
        for line in validation_lines(report):
            console.print(line, highlight=False)
        console.print(validation_summary(report))
        if rejects:
            console.print(f"rejected lines written to {rejects}")
    if not report.ok:
        from tunesmith.errors import DatasetError

        raise DatasetError(f"{file}: {len(report.errors)} error(s) found", "fix the lines listed above "
                           "(or drop them: --rejects FILE lists each rejected line with its reason)")


@data_app.command("stats")
def data_stats(
    file: Annotated[Path, typer.Argument(help="Dataset file.")],
    model: ModelOpt = "smollm2-135m-instruct",
    epochs: Annotated[int, typer.Option("--epochs", help="Epochs for the training-token/cost estimate.")] = 3,
    price_model: Annotated[str | None, typer.Option("--price-model", help="Price-table entry to cost "
                                                    "(default: the model's own; gpt-4o-mini is "
                                                    "shown too).")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Save the length histogram as a PNG.")] = None,
    fmt: FormatOpt = "auto",
    columns: ColumnsOpt = None,
    logs_split: LogsSplitOpt = "conversation",
) -> None:
    """Roles, turns, token distributions (real tokenizer + chat template), trained tokens and cost."""
    from tunesmith.data.render import histogram_lines, stats_table
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


@data_app.command("split")
def data_split(
    file: Annotated[Path, typer.Argument(help="Dataset file.")],
    train: Annotated[float, typer.Option("--train", help="Training share.")] = 0.8,
    val: Annotated[float, typer.Option("--val", help="Validation share.")] = 0.1,
    test: Annotated[float, typer.Option("--test", help="Test share.")] = 0.1,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same split.")] = 0,
    stratify: Annotated[str | None, typer.Option("--stratify", help="Keep label shares equal: a metadata "
                                                 "key, or `label` (metadata label, else the assistant "
                                                 "answer).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output folder (default: FILE_split/).")] = None,
    fmt: FormatOpt = "auto",
    columns: ColumnsOpt = None,
    logs_split: LogsSplitOpt = "conversation",
) -> None:
    """Write train/val/test.jsonl + manifest.json; near-duplicates always land in the same split."""
    from pydantic import ValidationError

    from tunesmith.config import format_validation_errors
    from tunesmith.data.split import SplitConfig, split_dataset
    from tunesmith.errors import ConfigError

    try:
        cfg = SplitConfig(train=train, val=val, test=test, seed=seed, stratify=stratify)
    except ValidationError as exc:
        raise ConfigError("invalid split options:\n" + format_validation_errors(exc),
                          "shares are between 0 and 1 and --train + --val + --test must be 1") from exc
    result = split_dataset(file, cfg, out, fmt, _load_options(columns, logs_split))
    console.print(f"wrote {result.out}/: " + ", ".join(f"{k}={v}" for k, v in result.counts.items())
                  + f" (seed {seed}, {result.manifest['n_groups']} duplicate-free groups)")


@data_app.command("dedup")
def data_dedup(
    file: Annotated[Path, typer.Argument(help="Dataset file.")],
    out: Annotated[Path, typer.Option("--out", help="Deduplicated OpenAI JSONL to write.")],
    threshold: Annotated[float, typer.Option("--threshold", help="Near-duplicate Jaccard threshold (MinHash "
                                             "over word bigrams of normalised text).")] = 0.85,
    rejects: Annotated[Path | None, typer.Option("--rejects", help="Where removed records go (default: "
                                                 "OUT.rejects.jsonl).")] = None,
    fmt: FormatOpt = "auto",
) -> None:
    """Drop exact and near-duplicate examples (the first of each group is kept)."""
    from tunesmith.data.dedup import dedup_file

    if not 0 < threshold <= 1:
        raise TunesmithError(f"--threshold {threshold}: must be in (0, 1]", "e.g. --threshold 0.85")
    r = dedup_file(file, out, threshold, rejects, fmt)
    console.print(f"kept {r.kept}; removed {r.removed_exact} exact and {r.removed_near} near duplicates, "
                  f"{r.invalid} invalid -> {r.out} (removed: {r.rejects})")


@data_app.command("convert")
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


@data_app.command("preview")
def data_preview(
    file: Annotated[Path, typer.Argument(help="Dataset file.")],
    model: ModelOpt = "smollm2-135m-instruct",
    n: Annotated[int, typer.Option("-n", help="How many examples.")] = 3,
    fmt: FormatOpt = "auto",
) -> None:
    """Render examples with the model's chat template; trained tokens (loss mask) in bold green."""
    from tunesmith.data.preview import preview_examples
    from tunesmith.data.render import preview_text

    for p in preview_examples(file, model, n, fmt):
        console.rule(f"line {p.line}: {p.n_tokens} tokens, {p.n_trained} trained")
        console.print(preview_text(p), highlight=False)


# ---------------------------------------------------------------- data augment / distill
TeacherOpt = Annotated[str, typer.Option("--teacher", help="Teacher model name at the endpoint (e.g. gpt-4o, "
                                         "an ft:... hosted fine-tune, or a `tunesmith serve` model).")]
BaseUrlOpt = Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible endpoint, e.g. "
                                                "http://127.0.0.1:8000/v1 (default: api.openai.com).")]
KeyEnvOpt = Annotated[str, typer.Option("--api-key-env", help="Environment variable holding the API key.")]
ConcurrencyOpt = Annotated[int, typer.Option("--concurrency", help="Requests in flight at once.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Per-request timeout (seconds).")]
RetriesOpt = Annotated[int, typer.Option("--max-retries", help="Retries on 429/5xx/timeouts, with "
                                         "exponential backoff that honours Retry-After.")]
MaxTokensOpt = Annotated[int, typer.Option("--max-tokens", help="Completion token limit per request.")]
CacheOpt = Annotated[Path | None, typer.Option("--cache", help="Request cache (append-only JSONL; rerun to "
                                               "resume without paying twice). Default: OUT.cache.jsonl.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", help="No progress bar.")]


def _teacher(model: str, base_url: str | None, key_env: str, concurrency: int, timeout: float, retries: int,
             max_tokens: int, cache: Path | None, **extra: object) -> dict:
    return {"model": model, "base_url": base_url, "api_key_env": key_env, "concurrency": concurrency,
            "timeout_s": timeout, "max_retries": retries, "max_tokens": max_tokens, "cache": cache, **extra}


@data_app.command("augment")
def augment_cmd(
    file: Annotated[Path, typer.Argument(help="Source dataset: OpenAI chat JSONL, Alpaca, ShareGPT, CSV or "
                                         "logs (detected as `tunesmith data validate` does).")],
    teacher: TeacherOpt,
    variations: Annotated[int, typer.Option("--variations", "-n", help="Paraphrases per user turn.")] = 3,
    out: Annotated[Path | None, typer.Option("--out", help="Output JSONL (default FILE.augmented.jsonl); "
                                             "rejects go to OUT.rejects.jsonl.")] = None,
    rewrite_answers: Annotated[bool, typer.Option("--rewrite-answers", help="Also restyle assistant "
                                                  "answers via the teacher (default: keep them).")] = False,
    originals: Annotated[bool, typer.Option("--originals/--no-originals", help="Copy the source examples "
                                            "into the output.")] = True,
    base_url: BaseUrlOpt = None, api_key_env: KeyEnvOpt = "OPENAI_API_KEY", concurrency: ConcurrencyOpt = 4,
    timeout: TimeoutOpt = 60.0, max_retries: RetriesOpt = 5, max_tokens: MaxTokensOpt = 512,
    temperature: Annotated[float, typer.Option("--temperature", help="Teacher sampling temperature.")] = 0.7,
    cache: CacheOpt = None, quiet: QuietOpt = False,
) -> None:
    """Paraphrase each example's user turns N times through a teacher model, keeping the answers.

    Near-duplicate (MinHash), invalid or garbled variations are dropped, with reasons, to OUT.rejects.jsonl.
    Each new example's metadata.augment records its source line, the teacher and the prompt version.
    Responses are cached as they arrive: rerun an interrupted command to resume without paying twice.

    Example: tunesmith data augment examples/sentiment/train.jsonl --teacher gpt-4o-mini -n 3
    """
    from tunesmith.augment.augment import run_augment
    from tunesmith.augment.config import AugmentConfig, build_config

    cfg = build_config(AugmentConfig, {
        "input": file, "output": out or file.with_name(file.stem + ".augmented.jsonl"),
        "variations": variations, "rewrite_answers": rewrite_answers, "include_originals": originals,
        "teacher": _teacher(teacher, base_url, api_key_env, concurrency, timeout, max_retries, max_tokens,
                            cache, temperature=temperature)})
    report = run_augment(cfg, show_progress=not quiet)
    console.print(report.summary(), highlight=False)


@data_app.command("distill")
def distill_cmd(
    prompts: Annotated[Path, typer.Argument(help="User prompts: .txt (one per line), or .jsonl with "
                                            "{\"prompt\": ...} or {\"messages\": [...]} (a dataset's "
                                            "user turns).")],
    teacher: TeacherOpt,
    out: Annotated[Path | None, typer.Option("--out", help="Output JSONL (default PROMPTS.distilled.jsonl); "
                                             "rejects go to OUT.rejects.jsonl.")] = None,
    system: Annotated[str | None, typer.Option("--system", help="System prompt for the teacher, kept in "
                                               "the training examples.")] = None,
    judge: Annotated[str | None, typer.Option("--judge", help="Judge model (same endpoint) scoring each "
                                              "answer 1-10; answers below --min-score are dropped.")] = None,
    min_score: Annotated[float, typer.Option("--min-score", help="Lowest judge score kept (1-10).")] = 7.0,
    json_schema: Annotated[Path | None, typer.Option("--json-schema", help="JSON Schema file every answer "
                                                     "must satisfy (structured tasks).")] = None,
    base_url: BaseUrlOpt = None, api_key_env: KeyEnvOpt = "OPENAI_API_KEY", concurrency: ConcurrencyOpt = 4,
    timeout: TimeoutOpt = 60.0, max_retries: RetriesOpt = 5, max_tokens: MaxTokensOpt = 512,
    temperature: Annotated[float, typer.Option("--temperature", help="Teacher sampling temperature.")] = 0.0,
    cache: CacheOpt = None, quiet: QuietOpt = False,
) -> None:
    """Have a teacher model answer a set of prompts, producing a training set (distillation).

    Moving off a hosted fine-tune: point --teacher at the ft:... model, distill, train an open model on it.
    Then compare the two with `tunesmith eval`. Near-duplicate prompts are skipped before any request.
    Empty answers, schema mismatches and low judge scores go, with reasons, to OUT.rejects.jsonl.

    Example: tunesmith data distill prompts.txt --teacher gpt-4o --judge gpt-4o-mini --min-score 7
    """
    from tunesmith.augment.config import DistillConfig, build_config
    from tunesmith.augment.distill import run_distill

    settings = _teacher(teacher, base_url, api_key_env, concurrency, timeout, max_retries, max_tokens, cache,
                        temperature=temperature)
    cfg = build_config(DistillConfig, {
        "prompts": prompts, "output": out or prompts.with_name(prompts.stem + ".distilled.jsonl"),
        "teacher": settings, "system": system, "min_score": min_score, "json_schema": json_schema,
        "judge": {**settings, "model": judge} if judge else None})
    report = run_distill(cfg, show_progress=not quiet)
    console.print(report.summary(), highlight=False)



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
@app.command("eval")
def eval_cmd(
    config: Annotated[Path, typer.Argument(help="EvalConfig YAML (configs/eval/, docs/evaluation.md).")],
    set_: SetOption = None,
) -> None:
    """Compare candidates (zero-shot, few-shot, system prompt, fine-tuned runs, endpoints) on a test set.

    Writes report.json, report.html and a resumable generation cache to output_dir, prints a summary table
    and a verdict. Rerunning after an interruption only generates the missing answers.

    Example: tunesmith eval configs/eval/sentiment.yaml --set limit=50 --set output_dir=runs/eval
    """
    from tunesmith.config import load_config
    from tunesmith.evaluate.config import EvalConfig
    from tunesmith.evaluate.run import run_evaluation

    _print_report(run_evaluation(load_config(EvalConfig, config, set_)))


@app.command("compare")
def compare_cmd(
    test: Annotated[Path, typer.Option("--test", help="Test set (chat JSONL; last turn = the answer).")],
    candidate: Annotated[list[str], typer.Option("--candidate", "-c", help="KIND[:VALUE][,key=value...] "
                         "(repeatable): zero-shot | few-shot:k=6[,selection=nearest] | system:prompt_file=P "
                         "| run:runs/x | endpoint:model=M,base_url=URL[,api_key_env=VAR]; any: name=LABEL.")],
    train: Annotated[Path | None, typer.Option("--train", help="Training split (few-shot examples).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("runs/compare"),
    set_: SetOption = None,
) -> None:
    """Short form of `tunesmith eval`: candidates on the command line instead of a YAML file.

    Example: tunesmith compare --test t.jsonl --train tr.jsonl -c zero-shot -c few-shot:k=6 -c run:runs/x
    """
    from tunesmith.evaluate.config import build_compare_config
    from tunesmith.evaluate.run import run_evaluation

    _print_report(run_evaluation(build_compare_config(test, candidate, train, out, set_)))


def _print_report(report) -> None:
    from tunesmith.evaluate.summary import report_table

    console.print(report_table(report))
    console.print(f"\n[bold]verdict:[/] {report.verdict}")
    console.print(f"report: {report.config['output_dir']}/report.html and report.json")


@app.command("decide")
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
    from tunesmith.config import load_config
    from tunesmith.evaluate.summary import ladder_table, report_table
    from tunesmith.ladder.config import DecideConfig
    from tunesmith.ladder.run import run_decision

    flags = {"train_file": train, "val_file": val, "test_file": test, "data_file": data, "docs": docs,
             "output_dir": out, "budget_minutes": budget_minutes, "max_steps": max_steps}
    overrides = [f"{k}={v}" for k, v in flags.items() if v is not None] + list(set_ or [])
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


@app.command("gate")
def gate_cmd(
    report: Annotated[Path, typer.Argument(help="report.json of `tunesmith eval` (or its directory).")],
    metric: Annotated[str, typer.Option("--metric", help="Metric the gain is measured on.")] = "accuracy",
    min_gain: Annotated[float, typer.Option("--min-gain", help="Required gain of the fine-tuned run over the "
                                            "best baseline (absolute, e.g. 0.05 = 5 points).")] = 0.0,
    max_regression: Annotated[float, typer.Option("--max-regression", help="Largest allowed drop of the "
                              "regression-suite pass rate or any other metric.")] = 0.02,
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


@app.command("advise")
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
    from tunesmith.config import load_config

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


@app.command("costs")
def costs_cmd(
    queries_per_day: Annotated[float, typer.Option("--queries-per-day", help="Traffic.")] = 100_000,
    large: Annotated[str, typer.Option("--large", help="MODEL:PROMPT_TOKENS:COMPLETION_TOKENS of the "
                                       "prompted large model.")] = "gpt-4o:2000:500",
    small: Annotated[str, typer.Option("--small", help="MODEL:PROMPT_TOKENS:COMPLETION_TOKENS of the "
                                       "fine-tuned small model (ft:BASE: BASE's training price).")]
    = "ft:gpt-4o-mini:500:400",
    trained_tokens: Annotated[float, typer.Option("--trained-tokens", help="Examples x tokens x epochs.")]
    = 3e6,
    training_cost: Annotated[float | None, typer.Option("--training-cost", help="USD; overrides the "
                                                        "trained-tokens estimate.")] = None,
    from_report: Annotated[Path | None, typer.Option("--from-report", help="Use the tokens per query "
                           "measured in this report.json (best baseline vs fine-tuned).")] = None,
    prices: Annotated[Path | None, typer.Option("--prices", help="Price table YAML.")] = None,
) -> None:
    """Return on fine-tuning: daily cost of a prompt-heavy large model vs a fine-tuned small one, break-even.

    The defaults are the guides' worked example (2,000 + 500 tokens on a large model vs 500 + 400 on a
    fine-tuned small one at 100k queries/day). Example: tunesmith costs --from-report runs/eval/report.json
    """
    from tunesmith.advise import costs
    from tunesmith.evaluate.summary import roi_summary, roi_table

    inp = costs.RoiInput(large=costs.parse_workload(large, "--large"),
                         small=costs.parse_workload(small, "--small"), queries_per_day=queries_per_day,
                         trained_tokens=trained_tokens, training_cost=training_cost)
    if from_report is not None:
        inp = costs.roi_from_report(from_report, base=inp)
    roi = costs.estimate_roi(inp, costs.load_price_table(prices))
    console.print(roi_table(inp, roi))
    console.print(roi_summary(roi))


# ---------------------------------------------------------------- serve / deploy / rollback / jobs
DataDirOption = Annotated[Path, typer.Option("--data-dir", help="Server data directory (files, jobs, "
                                             "adapters, tunesmith.db).")]
DbUrlOption = Annotated[str | None, typer.Option("--database-url", help="SQLAlchemy URL instead of SQLite "
                                                 "in --data-dir (e.g. postgresql+psycopg://u:pw@host/db).")]
BaseUrlOption = Annotated[str | None, typer.Option("--base-url", help="API base URL, e.g. "
                                                   "http://127.0.0.1:8000/v1 (default: OpenAI's).")]
ApiKeyOption = Annotated[str | None, typer.Option("--api-key", help="API key (default: $OPENAI_API_KEY).")]


@app.command("serve")
def serve_cmd(
    host: Annotated[str, typer.Option("--host", help="Interface (non-loopback: needs keys).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    data_dir: DataDirOption = Path("tunesmith-data"),
    api_key: Annotated[list[str] | None, typer.Option("--api-key", help="Accepted Bearer key (repeatable; "
                                                      "also $TUNESMITH_API_KEYS, comma-separated).")] = None,
    database_url: DbUrlOption = None,
    model: Annotated[list[str] | None, typer.Option(
        "--model", help="Base model to offer (repeatable; default: bundled smollm2-135m-instruct).")] = None,
    set_: SetOption = None,
) -> None:
    """Serve an OpenAI-compatible API: files, fine-tuning jobs, chat completions, models, aliases.

    Code written for OpenAI's fine-tuning API runs unchanged with base_url="http://HOST:PORT/v1".
    Jobs train in a subprocess (`tunesmith train`); queued jobs survive restarts and running jobs resume
    from their last checkpoint. Walkthrough: docs/server.md.

    Example: tunesmith serve --port 8000 --api-key sk-local-123 --set batch_window_ms=5
    """
    from tunesmith.config import apply_override
    from tunesmith.serve.server import run_server
    from tunesmith.serve.settings import ServeSettings, keys_from_env

    data = {"host": host, "port": port, "data_dir": str(data_dir), "database_url": database_url,
            "api_keys": list(api_key or []) + keys_from_env()}
    if model:
        data["base_models"] = list(model)
    for item in set_ or []:
        apply_override(data, item)
    settings = _validated(ServeSettings, data)
    console.print(f"tunesmith serve on http://{settings.host}:{settings.port}/v1 (data: {settings.data_dir}, "
                  f"auth: {'on' if settings.api_keys else 'off'})")
    run_server(settings)


def _validated(model_cls, data: dict):
    from tunesmith.config import validate_config

    return validate_config(model_cls, data, "tunesmith serve", "fix the flags listed (`tunesmith serve --help`)")


@app.command("deploy")
def deploy_cmd(
    model: Annotated[str, typer.Argument(help="Model, ft: model or checkpoint name, a local `tunesmith "
                                         "train` run directory, or a recipe YAML (`tunesmith decide` writes "
                                         "one per rung), to point the alias at.")],
    alias: Annotated[str, typer.Option("--alias", help="The stable name clients use as model=.")],
    data_dir: DataDirOption = Path("tunesmith-data"),
    database_url: DbUrlOption = None,
    require_report: Annotated[Path | None, typer.Option("--require-report", help="Only deploy if this "
                                                        "evaluation report passes the gate.")] = None,
    metric: Annotated[str | None, typer.Option("--metric", help="Gate metric (--require-report).")] = None,
    min_gain: Annotated[float | None, typer.Option("--min-gain", help="Gate: least gain over the "
                                                   "baseline.")] = None,
    max_regression: Annotated[float | None, typer.Option("--max-regression", help="Gate: largest allowed "
                                                         "regression.")] = None,
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


@app.command("rollback")
def rollback_cmd(
    alias: Annotated[str, typer.Argument(help="The alias to point back at its previous target.")],
    data_dir: DataDirOption = Path("tunesmith-data"),
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


@jobs_app.command("create")
def jobs_create_cmd(
    training_file: Annotated[Path, typer.Argument(help="Training data (OpenAI chat JSONL; DPO JSONL with "
                                                  "--method dpo).")],
    model: Annotated[str, typer.Option("--model", help="Base model.")] = "smollm2-135m-instruct",
    validation_file: Annotated[Path | None, typer.Option("--validation-file", help="Validation.")] = None,
    suffix: Annotated[str | None, typer.Option("--suffix", help="Added to the model's name.")] = None,
    method: Annotated[str, typer.Option("--method", help="supervised or dpo.")] = "supervised",
    epochs: Annotated[int | None, typer.Option("--epochs", help="n_epochs (default: auto).")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="batch_size (auto).")] = None,
    lr_multiplier: Annotated[float | None, typer.Option("--lr-multiplier", help="LR multiplier.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Training seed.")] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Follow events until the job ends.")] = True,
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Validate locally, upload, create a fine-tuning job, and follow it to the fine-tuned model name.

    Example: tunesmith jobs create train.jsonl --base-url http://127.0.0.1:8000/v1 --suffix support
    """
    from tunesmith.jobs_client import JobSpec, make_client, submit_job

    hp = {k: v for k, v in (("n_epochs", epochs), ("batch_size", batch_size),
                            ("learning_rate_multiplier", lr_multiplier)) if v is not None}
    client = make_client(base_url, api_key)
    job = submit_job(client, JobSpec(training_file, model, validation_file, suffix, method, hp, seed))
    console.print(f"created {job.id} ({job.status}) on {job.model}")
    if wait:
        _follow(client, job.id)


def _follow(client, job_id: str) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from tunesmith.errors import ServeError
    from tunesmith.jobs_client import follow_job

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeRemainingColumn(), console=console) as progress:
        bar = progress.add_task("training", total=None)

        def show(event) -> None:
            data = event.data or {}
            if event.type == "metrics" and data.get("total_steps"):
                progress.update(bar, completed=data.get("step", 0), total=data["total_steps"],
                                description=f"loss {data.get('train_loss', float('nan')):.4f}")
            else:
                progress.console.print(f"  {event.message}")

        job = follow_job(client, job_id, show)
    if job.status != "succeeded":
        message = job.error.message if job.error else "no error recorded"
        raise ServeError(f"job {job_id} {job.status}: {message}", f"see `tunesmith jobs events {job_id}`")
    console.print(f"[green]succeeded[/] fine-tuned model: [bold]{job.fine_tuned_model}[/] "
                  f"({job.trained_tokens} trained tokens)")


@jobs_app.command("list")
def jobs_list_cmd(limit: Annotated[int, typer.Option("--limit", help="How many.")] = 20,
                  base_url: BaseUrlOption = None, api_key: ApiKeyOption = None) -> None:
    """List fine-tuning jobs, newest first."""
    from tunesmith.jobs_client import call, make_client

    client = make_client(base_url, api_key)
    for job in call(client.fine_tuning.jobs.list, limit=limit).data:
        console.print(f"{job.id}  {job.status:<16} {job.model}  {job.fine_tuned_model or ''}")


@jobs_app.command("show")
def jobs_show_cmd(job_id: Annotated[str, typer.Argument(help="Job id.")], base_url: BaseUrlOption = None,
                  api_key: ApiKeyOption = None) -> None:
    """Show one job as JSON."""
    from tunesmith.jobs_client import call, make_client

    job = call(make_client(base_url, api_key).fine_tuning.jobs.retrieve, job_id)
    console.print_json(job.model_dump_json())


@jobs_app.command("events")
def jobs_events_cmd(job_id: Annotated[str, typer.Argument(help="Job id.")],
                    limit: Annotated[int, typer.Option("--limit", help="How many (newest).")] = 50,
                    base_url: BaseUrlOption = None, api_key: ApiKeyOption = None) -> None:
    """Print a job's events, oldest first."""
    from tunesmith.jobs_client import call, make_client

    page = call(make_client(base_url, api_key).fine_tuning.jobs.list_events, job_id, limit=limit)
    for event in reversed(page.data):
        console.print(f"[{event.type or 'message'}] {event.message}", highlight=False, markup=False)


@jobs_app.command("cancel")
def jobs_cancel_cmd(job_id: Annotated[str, typer.Argument(help="Job id.")], base_url: BaseUrlOption = None,
                    api_key: ApiKeyOption = None) -> None:
    """Cancel a job (its training process stops within seconds)."""
    from tunesmith.jobs_client import call, make_client

    job = call(make_client(base_url, api_key).fine_tuning.jobs.cancel, job_id)
    console.print(f"{job.id}: {job.status}")


@jobs_app.command("wait")
def jobs_wait_cmd(job_id: Annotated[str, typer.Argument(help="Job id.")], base_url: BaseUrlOption = None,
                  api_key: ApiKeyOption = None) -> None:
    """Follow a job's events with a progress bar until it ends; print the fine-tuned model."""
    from tunesmith.jobs_client import make_client

    _follow(make_client(base_url, api_key), job_id)


# ---------------------------------------------------------------- demo


@app.command("demo")
def demo_cmd(
    out: Annotated[Path, typer.Option("--out", help="Output directory (re-running reuses finished steps).")]
    = Path("runs/demo"),
    serve: Annotated[bool, typer.Option("--serve", help="Afterwards, leave the OpenAI-compatible server "
                                        "running with the alias, and print how to call it.")] = False,
    port: Annotated[int, typer.Option("--port", help="Port for --serve.")] = 8000,
    set_: SetOption = None,
) -> None:
    """The whole lifecycle on the bundled SmolLM2-135M-Instruct and two example tasks.

    1. advise on the sentiment task's profile; validate the data; token stats and training cost.
    2. decide on examples/sentiment: prompt, structured output, few-shot, LoRA fine-tune, fine-tune + structured.
    3. decide on examples/countries (facts in documents): prompt, few-shot, RAG, LoRA fine-tune.
    4. each task's recommended rung deployed under an alias (`sentiment`, `countries`); with --serve, served.

    Example: tunesmith demo --set eval_limit=50   (a quick look; --set 'train_overrides=[]' trains 2 epochs)
    """
    import secrets

    from tunesmith.config import load_config
    from tunesmith.demo import DemoConfig, client_snippet, run_demo, task_messages

    cfg = load_config(DemoConfig, None, [f"output_dir={out}", *(set_ or [])])
    result = run_demo(cfg, console)
    console.rule("[bold]done")
    console.print(f"total {result.seconds / 60:.1f} min; report: {result.report_html}")
    for task, rung in result.recommendations.items():
        console.print(f"[bold]{task}:[/] recommended {rung}")
    if not serve:
        console.print(f"serve it: tunesmith serve --data-dir {result.serve_dir}  (then call model={result.alias!r})")
        return
    from tunesmith.serve.server import run_server
    from tunesmith.serve.settings import ServeSettings

    key = secrets.token_urlsafe(16)
    console.print("call the alias while the server runs (Ctrl-C stops it):\n")
    messages = task_messages(cfg, "What a wonderful film!")
    console.print(client_snippet(f"http://127.0.0.1:{port}/v1", result.alias, key, messages), highlight=False,
                  markup=False)
    run_server(ServeSettings(data_dir=result.serve_dir, port=port, api_keys=[key]))


@app.command("reference", hidden=True)
def reference_cmd() -> None:
    """Print the configuration reference (docs/configuration.md) generated from the config models."""
    from tunesmith.reference import render_reference

    typer.echo(render_reference())



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


__all__ = ["app", "main", "Path"]
