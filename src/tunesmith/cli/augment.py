"""`tunesmith data augment` and `tunesmith data distill`: grow or create a training set through a teacher model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tunesmith.cli.options import console

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
