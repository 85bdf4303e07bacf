"""`tunesmith data augment`: paraphrase each example's user turns through a teacher, keep the answers.

``run_augment(cfg)`` reads like its steps: load the source examples, ask the teacher for N paraphrases of
every user turn (and, optionally, a restyled version of every assistant answer), build the variations, drop
the invalid ones and the near-duplicates (of each other or of any source example) into a rejects file with the
reason, and write originals + accepted variations, each new one carrying its provenance in ``metadata``.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from tunesmith.augment.client import CachedResponse, Job, RequestCache, TeacherRequestError
from tunesmith.augment.config import AugmentConfig, cache_path, rejects_path
from tunesmith.augment.report import RunReport, check_example, load_sources
from tunesmith.augment.runner import open_teacher, run_jobs
from tunesmith.core.atomic import write_jsonl_atomic
from tunesmith.core.schema import ChatExample
from tunesmith.data.near_dup import NearDupIndex

PARAPHRASE_VERSION = "paraphrase-v1"
REWRITE_VERSION = "rewrite-v1"
PARAPHRASE_SYSTEM = (
    "You rewrite user messages for a training dataset. Given a message, write {n} paraphrases that keep its "
    "meaning, intent, facts, language and any sentiment exactly, but vary wording and sentence structure. "
    "Reply with a JSON array of {n} strings and nothing else."
)
REWRITE_SYSTEM = (
    "You edit assistant answers for a training dataset. Rewrite the answer below in a clear, consistent, "
    "helpful style. Keep every fact, number, code block and any required output format (such as JSON) "
    "exactly. Reply with the rewritten answer only."
)


def run_augment(cfg: AugmentConfig, *, show_progress: bool = True) -> RunReport:
    """Augment ``cfg.input`` with teacher paraphrases and write ``cfg.output`` (+ rejects file).

    Args:
        cfg: the validated augment settings.
        show_progress: draw the progress bar (tokens, estimated cost).

    Returns:
        The run's report: counts, reject reasons, tokens, cost, retries.

    Raises:
        DatasetError: the input has invalid records (all are listed).
        ConfigError: the API key variable is not set.
        EndpointError: the teacher endpoint rejects the key or does not know the model.
    """
    sources = load_sources(cfg.input)
    cache = RequestCache(cache_path(cfg.teacher, cfg.output))
    try:
        paraphrases, rewrites, teacher = asyncio.run(_ask_teacher(cfg, sources, cache, show_progress))
    finally:
        cache.close()
    report = RunReport(
        command="augment",
        input=str(cfg.input),
        output=str(cfg.output),
        rejects=str(rejects_path(cfg.output)),
        teacher=cfg.teacher.model,
        sources=len(sources),
    )
    report.add_client(teacher)
    rows, rejects = build_variations(cfg, sources, paraphrases, rewrites, report)
    report.written = write_jsonl_atomic(cfg.output, rows)
    write_jsonl_atomic(rejects_path(cfg.output), rejects)
    return report


async def _ask_teacher(
    cfg: AugmentConfig, sources: list[tuple[int, ChatExample]], cache: RequestCache, show_progress: bool
) -> tuple[dict, dict, Any]:
    """Paraphrase requests for every user turn, then (optionally) rewrite requests for every answer."""
    async with open_teacher(cfg.teacher, cache) as teacher:
        jobs = {
            (s, i): paraphrase_job(m.content or "", cfg.variations)
            for s, (_, ex) in enumerate(sources)
            for i, m in enumerate(ex.messages)
            if m.role == "user"
        }
        paraphrases = await run_jobs(teacher, jobs, "paraphrasing", show_progress=show_progress)
        rewrites: dict = {}
        if cfg.rewrite_answers:
            jobs = {
                (s, i): rewrite_job(m.content)
                for s, (_, ex) in enumerate(sources)
                for i, m in enumerate(ex.messages)
                if m.role == "assistant" and m.content
            }
            rewrites = await run_jobs(teacher, jobs, "rewriting answers", show_progress=show_progress)
        return paraphrases, rewrites, teacher


def paraphrase_job(text: str, n: int) -> Job:
    """The request asking for ``n`` paraphrases of one user message."""
    return Job([{"role": "system", "content": PARAPHRASE_SYSTEM.format(n=n)}, {"role": "user", "content": text}])


def rewrite_job(text: str) -> Job:
    """The request asking for a restyled version of one assistant answer."""
    return Job([{"role": "system", "content": REWRITE_SYSTEM}, {"role": "user", "content": text}])


def parse_paraphrases(reply: str) -> list[str] | None:
    """Paraphrases in a reply: a JSON array of strings (code fences allowed) or a numbered list, else None."""
    text = re.sub(r"^```(?:json)?\s*|\s*```$", "", reply.strip())
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, list) and data and all(isinstance(s, str) for s in data):
        return [s.strip() for s in data]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    numbered = [re.match(r"^(?:\d+[.)]|[-*])\s+(.+)$", ln) for ln in lines]
    if len(lines) >= 2 and all(numbered):
        return [m.group(1).strip().strip('"') for m in numbered if m]
    return None


def build_variations(
    cfg: AugmentConfig,
    sources: list[tuple[int, ChatExample]],
    paraphrases: dict,
    rewrites: dict,
    report: RunReport,
) -> tuple[list[dict], list[dict]]:
    """Originals + accepted variations (in source order) and the rejects, each with a reason."""
    index = NearDupIndex(cfg.near_dup_threshold)
    for line, ex in sources:
        index.add(f"line {line}", _user_text(ex.messages))
    rows, rejects = [], []
    for s, (line, ex) in enumerate(sources):
        if cfg.include_originals:
            rows.append(ex.to_openai())
        for k, candidate in enumerate(_candidates(cfg, s, line, ex, paraphrases, rewrites)):
            reason = candidate if isinstance(candidate, str) else _check(candidate, index)
            report.requested += 1
            if reason is None:
                index.add(f"line {line} variation {k + 1}", _user_text(candidate["messages"]))
                rows.append(candidate)
                report.accepted += 1
            else:
                text = None if isinstance(candidate, str) else _user_text(candidate["messages"])
                rejects.append({"source_line": line, "variation": k + 1, "text": text, "reason": reason})
                report.reject(reason)
    return rows, rejects


def _candidates(
    cfg: AugmentConfig, s: int, line: int, ex: ChatExample, paraphrases: dict, rewrites: dict
) -> list[dict | str]:
    """``cfg.variations`` new examples for source ``s`` (at ``line``), or a reason where one cannot be built.

    Replies are keyed by (source index, message index): a JSON array file can hold several sources on a line.
    """
    out: list[dict | str] = []
    for k in range(cfg.variations):
        messages: list[dict[str, Any]] = []
        problem = None
        for i, m in enumerate(ex.messages):
            msg = m.to_openai()
            if m.role == "user":
                texts, problem = _paraphrase_texts(paraphrases[(s, i)], cfg.variations)
                msg["content"] = texts[k] if texts and k < len(texts) else None
                problem = problem or (None if msg["content"] else f"teacher returned fewer than {k + 1} paraphrases")
            elif (s, i) in rewrites:
                answer = rewrites[(s, i)]
                problem = problem or (
                    f"answer rewrite failed: {answer}"
                    if isinstance(answer, Exception)
                    else None
                    if answer.text.strip()
                    else "teacher returned an empty rewrite"
                )
                msg["content"] = answer.text.strip() if isinstance(answer, CachedResponse) else msg["content"]
            messages.append(msg)
            if problem:
                break
        out.append(
            problem
            or {
                "messages": messages,
                **({"tools": ex.tools} if ex.tools else {}),
                "metadata": _provenance(cfg, line, ex, k),
            }
        )
    return out


def _paraphrase_texts(result: CachedResponse | TeacherRequestError, n: int) -> tuple[list[str] | None, str | None]:
    if isinstance(result, TeacherRequestError):
        return None, str(result)
    parsed = parse_paraphrases(result.text)
    if parsed is None:
        shown = result.text.strip()[:60] or "(empty)"
        return None, f"teacher reply is not a JSON array of paraphrases: {shown!r}"
    return parsed[:n], None


def _check(candidate: dict, index: NearDupIndex) -> str | None:
    """Why a built variation is rejected (invalid example, or a near-duplicate), or None to keep it."""
    problem = check_example(candidate)
    if problem:
        return problem
    dup = index.find(_user_text(candidate["messages"]))
    return f"near-duplicate of {dup}" if dup else None


def _provenance(cfg: AugmentConfig, line: int, ex: ChatExample, k: int) -> dict[str, Any]:
    return {
        **(ex.metadata or {}),
        "augment": {
            "kind": "paraphrase",
            "source_file": str(cfg.input),
            "source_line": line,
            "source_id": (ex.metadata or {}).get("id"),
            "variation": k + 1,
            "teacher": cfg.teacher.model,
            "prompt_version": PARAPHRASE_VERSION,
            "answer_rewritten": cfg.rewrite_answers,
            **({"answer_prompt_version": REWRITE_VERSION} if cfg.rewrite_answers else {}),
        },
    }


def _user_text(messages: list) -> str:
    """All user turns of a conversation joined: the text compared for near-duplicates."""
    return "\n".join(
        (m["content"] if isinstance(m, dict) else m.content) or ""
        for m in messages
        if (m["role"] if isinstance(m, dict) else m.role) == "user"
    )
