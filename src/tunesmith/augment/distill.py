"""`tunesmith data distill`: a teacher model answers a set of user prompts, producing a training set.

``run_distill(cfg)`` steps: read the prompts (text lines, ``{"prompt"}`` or ``{"messages"}`` JSONL, or any
dataset format; all bad lines reported at once), drop near-duplicate prompts before paying for them, ask the
teacher, keep answers that are non-empty, match the JSON schema (if given) and score at least ``min_score``
with the judge (if given), and write them with their provenance; every drop goes to the rejects file with its reason.

Pointing ``--teacher`` at a hosted fine-tuned model (``ft:...``) moves its behaviour onto an open model:
distill, train, then compare both with ``tunesmith eval``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tunesmith.augment.client import CachedResponse, Job, RequestCache
from tunesmith.augment.config import DistillConfig, cache_path, is_local, rejects_path
from tunesmith.augment.local import local_source
from tunesmith.augment.report import RunReport, check_example
from tunesmith.augment.runner import open_teacher, run_jobs
from tunesmith.core import replies
from tunesmith.core.atomic import write_jsonl_atomic
from tunesmith.core.errors import ConfigError, DatasetError
from tunesmith.data.formats import detect_format
from tunesmith.data.load import load_numbered_examples
from tunesmith.data.near_dup import NearDupIndex

DISTILL_VERSION = "distill-v1"
JUDGE_VERSION = "judge-v1"
JUDGE_SYSTEM = (
    "You grade answers for a training dataset. Given a conversation and the assistant's answer, rate how "
    "correct, helpful and well-formatted the answer is on a scale from 1 (useless) to 10 (perfect). "
    "Reply with the number only."
)

Prompt = tuple[int, list[dict[str, Any]]]  # (source line, messages ending with a user turn)
DATASET_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv")  # read as datasets; any other suffix is one prompt a line


def run_distill(cfg: DistillConfig, *, show_progress: bool = True) -> RunReport:
    """Answer every prompt of ``cfg.prompts`` with the teacher; write the accepted examples to ``cfg.output``.

    Args:
        cfg: the validated distill settings.
        show_progress: draw the progress bars (tokens, estimated cost).

    Returns:
        The run's report: counts, reject reasons, tokens, cost, retries.

    Raises:
        DatasetError: the prompts file is missing, empty, or has bad lines (all are listed).
        ConfigError: the JSON schema is invalid, or the API key variable is not set.
        EndpointError: the endpoint rejects the key or does not know the model.
    """
    schema = load_json_schema(cfg.json_schema) if cfg.json_schema else None
    if cfg.judge is not None and is_local(cfg.judge):
        local_source(cfg.judge, "judge")  # a judge this machine does not have fails now, not after the teacher
    prompts = read_prompts(cfg.prompts, cfg.system)
    report = RunReport(
        command="distill",
        input=str(cfg.prompts),
        output=str(cfg.output),
        rejects=str(rejects_path(cfg.output)),
        teacher=cfg.teacher.model,
        sources=len(prompts),
    )
    rejects: list[dict] = []
    prompts = drop_duplicate_prompts(prompts, cfg.near_dup_threshold, rejects, report)
    cache = RequestCache(cache_path(cfg.teacher, cfg.output))
    try:
        rows = asyncio.run(_distill(cfg, prompts, schema, cache, rejects, report, show_progress))
    finally:
        cache.close()
    report.written = write_jsonl_atomic(cfg.output, rows)
    write_jsonl_atomic(rejects_path(cfg.output), rejects)
    return report


async def _distill(
    cfg: DistillConfig,
    prompts: list[Prompt],
    schema: dict | None,
    cache: RequestCache,
    rejects: list[dict],
    report: RunReport,
    show_progress: bool,
) -> list[dict]:
    """Teacher answers, the schema filter, then the judge filter; returns the accepted examples.

    Answers are keyed by the prompt's index: a JSON array file can hold several prompts on one line.
    """
    async with open_teacher(cfg.teacher, cache) as teacher:
        jobs = {k: Job(msgs) for k, (_, msgs) in enumerate(prompts)}
        answers = await run_jobs(teacher, jobs, "distilling", show_progress=show_progress)
    report.add_client(teacher)
    candidates = {}
    for k, (line, msgs) in enumerate(prompts):
        row = {"messages": [*msgs, {"role": "assistant", "content": ""}], "metadata": _provenance(cfg, line)}
        reason = check_answer(answers[k], schema, row)
        report.requested += 1
        if reason:
            _reject(rejects, report, line, msgs, reason)
        else:
            candidates[k] = row
    if cfg.judge is not None and candidates:
        await _judge(cfg, candidates, cache, rejects, report, show_progress)
    report.accepted = len(candidates)
    return [candidates[k] for k in range(len(prompts)) if k in candidates]


async def _judge(
    cfg: DistillConfig,
    candidates: dict[int, dict],
    cache: RequestCache,
    rejects: list[dict],
    report: RunReport,
    show_progress: bool,
) -> None:
    """Score each candidate with the judge; drop those below ``cfg.min_score`` (in place)."""
    assert cfg.judge is not None
    async with open_teacher(cfg.judge, cache, "judge") as judge:
        jobs = {k: judge_job(row["messages"]) for k, row in candidates.items()}
        scores = await run_jobs(judge, jobs, "judging", show_progress=show_progress)
    report.add_client(judge)
    for k in list(candidates):
        row = candidates[k]
        result = scores[k]
        score = parse_score(result.text) if isinstance(result, CachedResponse) else None
        row["metadata"]["distill"].update(judge=cfg.judge.model, judge_score=score, judge_prompt=JUDGE_VERSION)
        if score is None or score < cfg.min_score:
            why = (
                f"judge failed: {result}"
                if not isinstance(result, CachedResponse)
                else f"judge reply has no 1-10 score: {result.text.strip()[:60]!r}"
                if score is None
                else f"judge score below --min-score: {score:g} < {cfg.min_score:g}"
            )
            _reject(rejects, report, row["metadata"]["distill"]["source_line"], row["messages"][:-1], why)
            del candidates[k]


def check_answer(result: Any, schema: dict | None, row: dict) -> str | None:
    """Fill ``row``'s answer from the teacher's reply; return why it is rejected, or None."""
    if not isinstance(result, CachedResponse):
        return str(result)
    answer = result.text.strip()
    if not answer:
        return "teacher returned an empty answer"
    if schema is not None:
        answer = re.sub(r"^```(?:json)?\s*|\s*```$", "", answer)
        problem = schema_problem(answer, schema)
        if problem:
            return problem
    row["messages"][-1]["content"] = answer
    return check_example(row)


def schema_problem(answer: str, schema: dict) -> str | None:
    """Why ``answer`` is not a JSON document matching ``schema``, or None."""
    import jsonschema

    try:
        value = json.loads(answer)
    except json.JSONDecodeError as exc:
        return f"answer is not valid JSON: {exc.msg} at column {exc.colno}"
    error = jsonschema.exceptions.best_match(jsonschema.validators.validator_for(schema)(schema).iter_errors(value))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"answer does not match the JSON schema: at {where}: {error.message}"


def parse_score(text: str) -> float | None:
    """The judge's 1-10 score (:func:`tunesmith.core.replies.parse_score`); None if absent or outside 1..10."""
    return replies.parse_score(text, low=1, high=10, clip=False)


def judge_job(messages: list[dict[str, Any]]) -> Job:
    """The request asking the judge to score the last (assistant) message of a conversation."""
    convo = "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in messages[:-1])
    text = f"Conversation:\n{convo}\n\nAnswer to grade:\n{messages[-1]['content']}"
    return Job(
        [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": text}],
        {"temperature": 0.0, "max_tokens": 8},
    )


def load_json_schema(path: Path) -> dict:
    """A JSON Schema file, checked against its metaschema."""
    import jsonschema

    try:
        schema = json.loads(Path(path).read_text(encoding="utf-8"))
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except (OSError, json.JSONDecodeError, jsonschema.exceptions.SchemaError) as exc:
        msg = exc.message if isinstance(exc, jsonschema.exceptions.SchemaError) else str(exc)
        raise ConfigError(
            f"--json-schema {path}: not a valid JSON Schema: {msg}",
            'pass a JSON Schema document, e.g. {"type": "object", "required": [...]}',
        ) from exc
    return schema


def read_prompts(path: Path, system: str | None) -> list[Prompt]:
    """Prompts with their line numbers; one DatasetError lists every bad line.

    A ``.txt`` file has one prompt per line; a ``.jsonl`` file has ``{"prompt": "..."}`` or
    ``{"messages": [...]}`` per line; an existing dataset in any supported format (OpenAI, Alpaca, ShareGPT,
    CSV, logs; detected as ``data validate`` does) gives its conversations up to their last user turn.
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file", "check the prompts path")
    suffix = path.suffix.lower()
    if suffix == ".jsonl" and detect_format(path) == "openai":
        out = _line_prompts(path, _jsonl_prompt)
    elif suffix in DATASET_SUFFIXES:
        out = _dataset_prompts(path)
    else:
        out = _line_prompts(path, lambda raw: [{"role": "user", "content": raw.strip()}])
    if system is not None:
        out = [
            (line, [{"role": "system", "content": system}, *[m for m in msgs if m["role"] != "system"]])
            for line, msgs in out
        ]
    if not out:
        raise DatasetError(f"{path}: no prompts", "add one prompt per line")
    return out


def _line_prompts(path: Path, parse: Callable[[str], list[dict[str, Any]] | str]) -> list[Prompt]:
    """One prompt per non-blank line, parsed by ``parse`` (messages, or what is wrong with the line)."""
    out, bad = [], []
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        msgs = parse(raw)
        if isinstance(msgs, str):
            bad.append(f"  {path} line {lineno}: {msgs}")
        else:
            out.append((lineno, msgs))
    if bad:
        raise DatasetError(
            f"{path}: {len(bad)} bad prompt line(s):\n" + "\n".join(bad[:20]),
            'each line must be {"prompt": "..."} or {"messages": [...]} with a user turn',
        )
    return out


def _dataset_prompts(path: Path) -> list[Prompt]:
    """Each example of a dataset file (format detected), cut after its last user turn."""
    out, bad = [], []
    for line, ex in load_numbered_examples(path):
        msgs = [{"role": m.role, "content": m.content} for m in getattr(ex, "messages", [])]
        last_user = max((i for i, m in enumerate(msgs) if m["role"] == "user"), default=None)
        if last_user is None:
            bad.append(f"  {path} line {line}: no user turn")
        else:
            out.append((line, msgs[: last_user + 1]))
    if bad:
        raise DatasetError(
            f"{path}: {len(bad)} example(s) without a user turn:\n" + "\n".join(bad[:20]),
            "every example needs a user turn for the teacher to answer",
        )
    return out


def _jsonl_prompt(raw: str) -> list[dict[str, Any]] | str:
    """Messages up to the last user turn of one JSONL line, or what is wrong with it."""
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        return f"not valid JSON ({exc.msg} at column {exc.colno})"
    if isinstance(obj, dict) and isinstance(obj.get("prompt"), str) and obj["prompt"].strip():
        return [{"role": "user", "content": obj["prompt"].strip()}]
    msgs = obj.get("messages") if isinstance(obj, dict) else None
    if not isinstance(msgs, list) or not all(isinstance(m, dict) and "role" in m for m in msgs):
        return 'expected {"prompt": "..."} or {"messages": [{"role": ..., "content": ...}]}'
    last_user = max((i for i, m in enumerate(msgs) if m["role"] == "user"), default=None)
    if last_user is None:
        return "field messages: no user turn"
    return [{"role": m["role"], "content": m.get("content")} for m in msgs[: last_user + 1]]


def drop_duplicate_prompts(
    prompts: list[Prompt], threshold: float, rejects: list[dict], report: RunReport
) -> list[Prompt]:
    """Prompts whose user text is not a near-duplicate of an earlier one (the rest are rejected)."""
    index, kept = NearDupIndex(threshold), []
    for line, msgs in prompts:
        text = "\n".join(m["content"] or "" for m in msgs if m["role"] == "user")
        dup = index.find(text)
        if dup:
            report.requested += 1
            _reject(rejects, report, line, msgs, f"near-duplicate prompt of {dup}")
            continue
        index.add(f"line {line}", text)
        kept.append((line, msgs))
    return kept


def _provenance(cfg: DistillConfig, line: int) -> dict[str, Any]:
    return {
        "distill": {
            "source_file": str(cfg.prompts),
            "source_line": line,
            "teacher": cfg.teacher.model,
            "prompt_version": DISTILL_VERSION,
            "system": cfg.system is not None,
        }
    }


def _reject(rejects: list[dict], report: RunReport, line: int, msgs: list[dict], reason: str) -> None:
    prompt = next((m["content"] for m in reversed(msgs) if m["role"] == "user"), None)
    rejects.append({"source_line": line, "prompt": prompt, "reason": reason})
    report.reject(reason)
