"""``tunesmith data validate``: every problem of a dataset file, with file, line, field, code and hint.

Step: :func:`validate_source` over a :class:`DataSource` and a :class:`DataConfig` (``tunesmith data prepare``
runs it first); :func:`validate_file` is the CLI's file-and-flags form. It streams the file once: records are
parsed by the format loaders, checked one by one (:mod:`tunesmith.data.checks`), measured with the model's
tokenizer in batches (:mod:`tunesmith.data.tokens`) and fed to a MinHash duplicate index
(:mod:`tunesmith.data.near_dup`); file-level findings (too few examples, duplicates, system prompts, train/val
leakage) are added at the end.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.core.records import Record
from tunesmith.core.schema import ChatExample, PreferenceExample
from tunesmith.data.checks import DataCheckConfig, all_contents, find_errors, find_warnings
from tunesmith.data.config import DataConfig
from tunesmith.data.formats import LoadOptions
from tunesmith.data.near_dup import DuplicateIndex
from tunesmith.data.progress import file_progress
from tunesmith.data.rejects import RejectWriter, open_rejects, problems_reason
from tunesmith.data.report import Issue, ValidationReport
from tunesmith.data.source import DataSource
from tunesmith.data.tokens import TokenCounter
from tunesmith.models.bundled import BUNDLED_NAME

MAX_SYSTEM_VARIANTS = 1000  # distinct system prompts tracked (bounded memory)


@dataclass
class ValidationScan:
    """What one streaming validation pass learnt: the report plus what later steps (dedup, split) reuse.

    Indices into ``dups``, ``lines`` and ``tokens`` count valid examples in reading order; ``invalid`` holds
    the reading-order numbers of the records with errors (the ones written to the rejects file).
    """

    cfg: DataCheckConfig
    counter: TokenCounter | None
    report: ValidationReport
    dups: DuplicateIndex
    rejects: RejectWriter | None = None
    observe: Callable[[ChatExample | PreferenceExample, int], None] | None = None
    where_file: array = field(default_factory=lambda: array("b"))  # dup index -> file number
    lines: array = field(default_factory=lambda: array("q"))  # dup index -> line
    tokens: array = field(default_factory=lambda: array("q"))  # dup index -> tokens (-1: not counted)
    invalid: set[int] = field(default_factory=set)
    pending: list[tuple[Record, int]] = field(default_factory=list)
    systems: Counter = field(default_factory=Counter)
    system_first: dict[str | None, int] = field(default_factory=dict)


def validate_file(
    path: str | Path,
    val_path: str | Path | None = None,
    model: str | None = BUNDLED_NAME,
    fmt: str = "auto",
    config: DataCheckConfig | None = None,
    rejects_path: str | Path | None = None,
    options: LoadOptions | None = None,
    tokenizer: Any = None,
    progress: bool = False,
) -> ValidationReport:
    """Validate a dataset file (and optionally its validation file): the CLI's file-and-flags form.

    Args:
        path: the training file (any supported format).
        val_path: a validation file, checked the same way and for leakage from ``path``.
        model: the model whose tokenizer and context window are checked against; None skips token checks.
        fmt: the file format (``auto`` detects it).
        config: thresholds (:class:`DataCheckConfig`).
        rejects_path: write every rejected record here (JSONL ``{"file", "line", "reason", "raw"}``).
        options: format options (CSV columns, log splitting).
        tokenizer: an already loaded tokenizer for ``model`` (skips loading it).
        progress: show a progress bar.

    Returns:
        A :class:`ValidationReport`; ``report.ok`` is False when any error exists.

    Raises:
        DatasetError: a file is missing or its format cannot be read at all.
        ModelError: ``model`` cannot be found locally.
    """
    source = DataSource.of(path, fmt, options)
    cfg = DataConfig(source=source, model=model, validation=config or DataCheckConfig())
    val = DataSource.of(val_path, fmt, options) if val_path else None
    with ExitStack() as stack:
        rejects = stack.enter_context(open_rejects(rejects_path)) if rejects_path else None
        scan = validate_source(source, cfg, val=val, rejects=rejects, tokenizer=tokenizer, progress=progress)
    scan.report.rejects_path = str(rejects_path) if rejects_path else None
    return scan.report


def validate_source(
    source: DataSource,
    cfg: DataConfig,
    *,
    val: DataSource | None = None,
    rejects: RejectWriter | None = None,
    tokenizer: Any = None,
    progress: bool = False,
    observe: Callable[[ChatExample | PreferenceExample, int], None] | None = None,
) -> ValidationScan:
    """Stream ``source`` (and ``val``) once: every problem, the duplicate index, token counts per example.

    Args:
        source: the data to check.
        cfg: ``cfg.validation`` thresholds, ``cfg.model`` for the token checks, ``cfg.dedup`` for the index.
        val: a validation source, checked the same way and for leakage from ``source``.
        rejects: where records with errors go (with their reason).
        tokenizer: an already loaded tokenizer for ``cfg.model`` (skips loading it).
        progress: show a progress bar.
        observe: called as ``observe(example, line)`` for every valid example, in index order.

    Raises:
        DatasetError: a file is missing or its format cannot be read at all.
        ModelError: ``cfg.model`` cannot be found locally.
    """
    checks, model = cfg.validation, cfg.model
    sources = [source] + ([val] if val else [])
    counter = TokenCounter(model or "tokenizer", tokenizer, checks.max_length) if (model or tokenizer) else None
    report = ValidationReport(
        files=[str(s.path) for s in sources],
        kind=source.detect_kind(),
        model=model,
        context_length=counter.context if counter else None,
    )
    dups = DuplicateIndex(cfg.dedup.threshold, cfg.dedup.num_perm)
    scan = ValidationScan(checks, counter, report, dups, rejects, observe)
    for number, s in enumerate(sources):
        _scan_file(scan, number, s, progress)
    _report_duplicates(scan)
    report.issues.sort(key=lambda i: (report.files.index(i.file), i.line or 0))
    return scan


def _scan_file(scan: ValidationScan, number: int, source: DataSource, progress: bool) -> None:
    n_valid_before = len(scan.dups)
    scan.systems, scan.system_first = Counter(), {}
    kind = source.record_kind()
    path = source.path
    with file_progress(path, f"validating {path.name}", enabled=progress) as advance:
        for rec in source.records(kind):
            advance(len(rec.raw) + 1)
            scan.report.n_records += 1
            _check_record(scan, number, rec)
            if len(scan.pending) >= scan.cfg.batch_size:
                _flush_tokens(scan)
    _flush_tokens(scan)
    _file_level(scan, str(path), len(scan.dups) - n_valid_before)


def _issue(
    scan: ValidationScan,
    severity: str,
    rec: Record,
    code: str,
    message: str,
    fld: str | None = None,
    hint: str = "",
) -> None:
    scan.report.issues.append(
        Issue(severity=severity, file=rec.path, line=rec.line, field=fld, code=code, message=message, hint=hint)
    )


def _check_record(scan: ValidationScan, number: int, rec: Record) -> None:
    problems = rec.all_problems() if rec.example is None else find_errors(rec.example)
    for p in problems:
        _issue(scan, "error", rec, p.code, p.message, p.field, p.hint)
    if problems:
        scan.invalid.add(scan.report.n_records - 1)
        if scan.rejects is not None:
            scan.rejects.write(rec, problems_reason(problems))
        return
    ex = rec.example
    assert ex is not None  # records without problems carry an example
    scan.report.n_examples += 1
    for p in find_warnings(ex, scan.cfg):
        _issue(scan, "warning", rec, p.code, p.message, p.field, p.hint)
    index = scan.dups.add(ex)
    scan.where_file.append(number)
    scan.lines.append(rec.line)
    scan.tokens.append(-1)
    _track_system(scan, ex, rec.line)
    if scan.observe is not None:
        scan.observe(ex, rec.line)
    if scan.counter is not None:
        scan.pending.append((rec, index))


def _track_system(scan: ValidationScan, ex: ChatExample | PreferenceExample, line: int) -> None:
    prompt = ex.input.system_prompt if isinstance(ex, PreferenceExample) else ex.system_prompt
    if prompt in scan.systems or len(scan.systems) < MAX_SYSTEM_VARIANTS:
        scan.systems[prompt] += 1
        scan.system_first.setdefault(prompt, line)


def _flush_tokens(scan: ValidationScan) -> None:
    """Count tokens of the pending batch and report context, special-token and zero-trained findings."""
    counter, batch = scan.counter, scan.pending
    scan.pending = []
    if counter is None or not batch:
        return
    counts = counter.count([rec.example for rec, _ in batch])
    for (rec, index), count in zip(batch, counts, strict=True):
        ex = rec.example
        if count is not None:
            scan.tokens[index] = count.n_tokens
        for fld, content in all_contents(ex):
            found = counter.special_tokens_in(content)
            if found:
                _issue(
                    scan,
                    "warning",
                    rec,
                    "special_token_in_content",
                    f"model special token(s) {found} inside the content",
                    fld,
                    "remove them: the model would learn to emit control tokens",
                )
        if count is None:
            _issue(
                scan,
                "warning",
                rec,
                "template_error",
                f"the chat template of {counter.model} cannot render this example",
                hint="check the roles/tool calls against the model's template",
            )
            continue
        if count.n_tokens > counter.context:
            _issue(
                scan,
                "warning",
                rec,
                "too_long",
                f"{count.n_tokens} tokens, longer than the context ({counter.context}); it will be truncated",
                hint="shorten or split the example",
            )
        if (count.n_trained == 0 or count.n_tokens > counter.context) and counter.trained_after_truncation(ex) == 0:
            _issue(
                scan,
                "warning",
                rec,
                "zero_trained_tokens",
                "no trainable tokens after loss masking (every assistant turn has weight 0, or is truncated away)",
                hint="give an assistant turn weight 1, or shorten the prompt",
            )


def _file_level(scan: ValidationScan, path: str, n: int) -> None:
    cfg, issues = scan.cfg, scan.report.issues
    if n < cfg.min_examples:
        issues.append(
            Issue(
                severity="error",
                file=path,
                code="too_few_examples",
                message=f"only {n} valid example(s); at least {cfg.min_examples} are required",
                hint="add examples (OpenAI requires 10; 50-100+ is a sensible start)",
            )
        )
    elif n < cfg.recommended_examples:
        issues.append(
            Issue(
                severity="warning",
                file=path,
                code="few_examples",
                message=f"only {n} valid examples; fewer than {cfg.recommended_examples} rarely fine-tunes well",
                hint="add examples, or try few-shot prompting (`tunesmith advise`)",
            )
        )
    if len(scan.systems) < 2:
        return
    (main, main_n), *others = scan.systems.most_common()
    for prompt, count in others:
        shown = "no system prompt" if prompt is None else f"system prompt {prompt[:60]!r}"
        issues.append(
            Issue(
                severity="warning",
                file=path,
                line=scan.system_first[prompt],
                code="inconsistent_system_prompt",
                field="messages.0" if prompt else None,
                message=f"{count} example(s) use {shown}, while {main_n} use the most common one",
                hint="use one system prompt in training and in production",
            )
        )


def _report_duplicates(scan: ValidationScan) -> None:
    groups = scan.dups.groups()
    files = scan.report.files
    for kind, found in (("exact_duplicate", groups.exact), ("near_duplicate", groups.near)):
        for group in found:
            places = [(scan.where_file[i], scan.lines[i]) for i in group]
            for number in sorted({f for f, _ in places}):
                lines = [ln for f, ln in places if f == number]
                if len(lines) > 1:
                    what = "identical" if kind == "exact_duplicate" else "near-duplicates"
                    scan.report.issues.append(
                        Issue(
                            severity="warning",
                            file=files[number],
                            line=lines[0],
                            code=kind,
                            lines=lines,
                            message=f"lines {', '.join(map(str, lines[:20]))} are {what}",
                            hint="drop the copies with `tunesmith data dedup`",
                        )
                    )
            train = [ln for f, ln in places if f == 0]
            if train and len(train) < len(places):
                for val_line in (ln for f, ln in places if f == 1):
                    scan.report.issues.append(
                        Issue(
                            severity="warning",
                            file=files[1],
                            line=val_line,
                            code="train_val_leak",
                            lines=train,
                            message=f"also in the training file (lines {', '.join(map(str, train[:10]))}): "
                            f"{'exact' if kind == 'exact_duplicate' else 'near'} duplicate",
                            hint="remove it from one file (`tunesmith data split` keeps duplicates together)",
                        )
                    )
