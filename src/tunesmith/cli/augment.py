"""`tunesmith data augment` and `tunesmith data distill`: grow or create a training set through a teacher model.

Both take either a data file plus flags, or a config YAML (`AugmentConfig`, `DistillConfig`) with `--set
key=value`, like `train` and `eval`. The flags are shortcuts for config keys and read their defaults from the
config models; only a flag typed on the command line overrides the YAML. Precedence: defaults < YAML < flags
< --set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel

from tunesmith.augment.config import DISTILL_TEMPERATURE, AugmentConfig, DistillConfig, TeacherSettings
from tunesmith.cli.options import SetOption, as_override, console
from tunesmith.core.config import load_config

_TEACHER = TeacherSettings.model_fields
_AUGMENT = AugmentConfig.model_fields
_DISTILL = DistillConfig.model_fields

TeacherOpt = Annotated[
    str | None,
    typer.Option(
        "--teacher",
        help="Teacher model name at the endpoint (e.g. gpt-4o, "
        "an ft:... hosted fine-tune, or a `tunesmith serve` model); "
        "required unless the config YAML sets teacher.model.",
    ),
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (default: api.openai.com); `local` answers "
        "on this machine with tunesmith's generation engine (--teacher: a model name/dir or a training run dir).",
    ),
]
KeyEnvOpt = Annotated[str, typer.Option("--api-key-env", help="Environment variable holding the API key.")]
ConcurrencyOpt = Annotated[int, typer.Option("--concurrency", help="Requests in flight at once.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Per-request timeout (seconds).")]
RetriesOpt = Annotated[
    int,
    typer.Option(
        "--max-retries", help="Retries on 429/5xx/timeouts, with exponential backoff that honours Retry-After."
    ),
]
MaxTokensOpt = Annotated[int, typer.Option("--max-tokens", help="Completion token limit per request.")]
TemperatureOpt = Annotated[float, typer.Option("--temperature", help="Teacher sampling temperature.")]
CacheOpt = Annotated[
    Path | None,
    typer.Option(
        "--cache",
        help="Request cache (append-only JSONL; rerun to resume without paying twice). Default: OUT.cache.jsonl.",
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", help="No progress bar.")]

# Command-line parameter -> config key, for the flags both commands share.
TEACHER_FLAGS = {
    "teacher": "teacher.model",
    "base_url": "teacher.base_url",
    "api_key_env": "teacher.api_key_env",
    "concurrency": "teacher.concurrency",
    "timeout": "teacher.timeout_s",
    "max_retries": "teacher.max_retries",
    "max_tokens": "teacher.max_tokens",
    "temperature": "teacher.temperature",
    "cache": "teacher.cache",
}


def _typed(ctx: typer.Context, param: str) -> bool:
    """Whether ``param`` was given on the command line (not left at its default)."""
    source = ctx.get_parameter_source(param)
    return source is not None and source.name != "DEFAULT"


def load_teacher_config(
    ctx: typer.Context,
    model_cls: type[BaseModel],
    source: Path,
    source_key: str,
    flags: dict[str, str],
    set_: list[str] | None,
) -> Any:
    """``model_cls`` from ``source`` (a config YAML, or the data file for ``source_key``), the typed flags and
    ``--set``.

    Raises:
        typer.BadParameter: no --teacher and no config YAML (exit 2, like any missing option).
        ConfigError: an unreadable YAML or every invalid key at once.
    """
    is_yaml = source.suffix.lower() in (".yaml", ".yml")
    if not is_yaml and not _typed(ctx, "teacher"):
        raise typer.BadParameter(
            "required unless the first argument is a config YAML that sets teacher.model", param_hint="'--teacher'"
        )
    overrides = [] if is_yaml else [as_override(source_key, source)]
    overrides += [as_override(key, ctx.params[param]) for param, key in flags.items() if _typed(ctx, param)]
    return load_config(model_cls, source if is_yaml else None, [*overrides, *(set_ or [])])


def augment_cmd(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            help="Source dataset: OpenAI chat JSONL, Alpaca, ShareGPT, CSV or "
            "logs (detected as `tunesmith data validate` does), or an "
            "AugmentConfig YAML (configs/augment/) the flags and --set override."
        ),
    ],
    teacher: TeacherOpt = None,
    variations: Annotated[int, typer.Option("--variations", "-n", help="Paraphrases per user turn.")] = _AUGMENT[
        "variations"
    ].default,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output JSONL (default FILE.augmented.jsonl); rejects go to OUT.rejects.jsonl."),
    ] = None,
    rewrite_answers: Annotated[
        bool,
        typer.Option("--rewrite-answers", help="Also restyle assistant answers via the teacher (default: keep them)."),
    ] = _AUGMENT["rewrite_answers"].default,
    originals: Annotated[
        bool, typer.Option("--originals/--no-originals", help="Copy the source examples into the output.")
    ] = _AUGMENT["include_originals"].default,
    base_url: BaseUrlOpt = _TEACHER["base_url"].default,
    api_key_env: KeyEnvOpt = _TEACHER["api_key_env"].default,
    concurrency: ConcurrencyOpt = _TEACHER["concurrency"].default,
    timeout: TimeoutOpt = _TEACHER["timeout_s"].default,
    max_retries: RetriesOpt = _TEACHER["max_retries"].default,
    max_tokens: MaxTokensOpt = _TEACHER["max_tokens"].default,
    temperature: TemperatureOpt = _TEACHER["temperature"].default,
    cache: CacheOpt = _TEACHER["cache"].default,
    set_: SetOption = None,
    quiet: QuietOpt = False,
) -> None:
    """Paraphrase each example's user turns N times through a teacher model, keeping the answers.

    Near-duplicate (MinHash), invalid or garbled variations are dropped, with reasons, to OUT.rejects.jsonl.
    Each new example's metadata.augment records its source line, the teacher and the prompt version.
    Responses are cached as they arrive: rerun an interrupted command to resume without paying twice.

    Example: tunesmith data augment examples/sentiment/train.jsonl --teacher gpt-4o-mini -n 3
    Or:      tunesmith data augment configs/augment/sentiment.yaml --set teacher.base_url=http://127.0.0.1:8000/v1
    """
    from tunesmith.augment.augment import run_augment

    flags = {
        **TEACHER_FLAGS,
        "variations": "variations",
        "out": "output",
        "rewrite_answers": "rewrite_answers",
        "originals": "include_originals",
    }
    cfg = load_teacher_config(ctx, AugmentConfig, file, "input", flags, set_)
    report = run_augment(cfg, show_progress=not quiet)
    console.print(report.summary(), highlight=False)


def distill_cmd(
    ctx: typer.Context,
    prompts: Annotated[
        Path,
        typer.Argument(
            help="User prompts: .txt (one per line), or .jsonl with "
            '{"prompt": ...} or {"messages": [...]} (a dataset\'s '
            "user turns); or a DistillConfig YAML (configs/distill/) the "
            "flags and --set override."
        ),
    ],
    teacher: TeacherOpt = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output JSONL (default PROMPTS.distilled.jsonl); rejects go to OUT.rejects.jsonl."),
    ] = None,
    system: Annotated[
        str | None, typer.Option("--system", help="System prompt for the teacher, kept in the training examples.")
    ] = _DISTILL["system"].default,
    judge: Annotated[
        str | None,
        typer.Option(
            "--judge",
            help="Judge model (same endpoint) scoring each answer 1-10; answers below --min-score are dropped.",
        ),
    ] = None,
    min_score: Annotated[float, typer.Option("--min-score", help="Lowest judge score kept (1-10).")] = _DISTILL[
        "min_score"
    ].default,
    json_schema: Annotated[
        Path | None,
        typer.Option("--json-schema", help="JSON Schema file every answer must satisfy (structured tasks)."),
    ] = _DISTILL["json_schema"].default,
    base_url: BaseUrlOpt = _TEACHER["base_url"].default,
    api_key_env: KeyEnvOpt = _TEACHER["api_key_env"].default,
    concurrency: ConcurrencyOpt = _TEACHER["concurrency"].default,
    timeout: TimeoutOpt = _TEACHER["timeout_s"].default,
    max_retries: RetriesOpt = _TEACHER["max_retries"].default,
    max_tokens: MaxTokensOpt = _TEACHER["max_tokens"].default,
    temperature: TemperatureOpt = DISTILL_TEMPERATURE,
    cache: CacheOpt = _TEACHER["cache"].default,
    set_: SetOption = None,
    quiet: QuietOpt = False,
) -> None:
    """Have a teacher model answer a set of prompts, producing a training set (distillation).

    Moving off a hosted fine-tune: point --teacher at the ft:... model, distill, train an open model on it.
    Then compare the two with `tunesmith eval`. Near-duplicate prompts are skipped before any request.
    Empty answers, schema mismatches and low judge scores go, with reasons, to OUT.rejects.jsonl.

    Example: tunesmith data distill prompts.txt --teacher gpt-4o --judge gpt-4o-mini --min-score 7
    Or:      tunesmith data distill configs/distill/sentiment.yaml --set judge.model=gpt-4o-mini
    """
    from tunesmith.augment.distill import run_distill

    flags = {
        **TEACHER_FLAGS,
        "out": "output",
        "system": "system",
        "judge": "judge.model",
        "min_score": "min_score",
        "json_schema": "json_schema",
    }
    cfg = load_teacher_config(ctx, DistillConfig, prompts, "prompts", flags, set_)
    report = run_distill(cfg, show_progress=not quiet)
    console.print(report.summary(), highlight=False)
