"""``tunesmith data validate``: every problem of a dataset file, with file, line, field, code and hint.

Entry point: :func:`validate_file`. It streams the file once: records are parsed by the format loaders,
checked one by one (:mod:`tunesmith.data.checks`), measured with the model's tokenizer in batches
(:mod:`tunesmith.data.tokens`) and fed to a MinHash duplicate index (:mod:`tunesmith.data.near_dup`);
file-level findings (too few examples, duplicates, system prompts, train/val leakage) are added at the end.
"""

from __future__ import annotations

import json
from array import array
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from tunesmith.atomic import atomic_open
from tunesmith.data.checks import DataCheckConfig, all_contents, find_errors, find_warnings
from tunesmith.data.formats import LoadOptions
from tunesmith.data.load import Record, iter_records
from tunesmith.data.near_dup import DuplicateIndex
from tunesmith.data.progress import file_progress
from tunesmith.data.schema import ChatExample, PreferenceExample
from tunesmith.data.tokens import TokenCounter
from tunesmith.models.bundled import BUNDLED_NAME

MAX_SYSTEM_VARIANTS = 1000  # distinct system prompts tracked (bounded memory)


class Issue(BaseModel):
    """One problem: ``severity`` error (unusable) or warning (suspicious), where it is and what to do."""

    severity: Literal["error", "warning"]
    file: str
    line: int | None = Field(default=None, description="1-based line; None for file-level findings.")
    field: str | None = Field(
        default=None, description="Dotted path of the field at fault (messages.2.role)."
    )
    code: str = Field(description="Short machine-readable code, e.g. not_json_object, near_duplicate.")
    message: str
    hint: str = ""
    lines: list[int] | None = Field(default=None, description="All lines of a group (duplicates, leakage).")

    def where(self) -> str:
        """``file line N field F``."""
        return (
            self.file
            + (f" line {self.line}" if self.line else "")
            + (f" field {self.field}" if self.field else "")
        )


class ValidationReport(BaseModel):
    """The result of :func:`validate_file` (also what the server returns for an upload check)."""

    files: list[str]
    kind: str = Field(description="chat or preference (detected).")
    model: str | None = None
    context_length: int | None = None
    n_records: int = 0
    n_examples: int = Field(default=0, description="Valid examples (records without errors).")
    issues: list[Issue] = Field(default_factory=list)
    rejects_path: str | None = None

    @property
    def errors(self) -> list[Issue]:
        """Issues with severity error."""
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        """Issues with severity warning."""
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors

    def counts(self) -> dict[str, int]:
        """Number of issues per code."""
        return dict(Counter(i.code for i in self.issues))

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON-able dict, with error/warning totals and per-code counts."""
        data = self.model_dump()
        data.update(
            ok=self.ok, n_errors=len(self.errors), n_warnings=len(self.warnings), counts=self.counts()
        )
        return data


@dataclass
class _Scan:
    """State shared while streaming the file(s)."""

    cfg: DataCheckConfig
    counter: TokenCounter | None
    report: ValidationReport
    dups: DuplicateIndex
    where_file: array = field(default_factory=lambda: array("b"))  # dup index -> file number
    where_line: array = field(default_factory=lambda: array("q"))  # dup index -> line
    pending: list[tuple[Record, str]] = field(default_factory=list)
    systems: Counter = field(default_factory=Counter)
    system_first: dict[str | None, int] = field(default_factory=dict)
    n_valid: int = 0


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
    """Validate a dataset file (and optionally its validation file) and return every problem found.

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
    cfg = config or DataCheckConfig()
    paths = [Path(path)] + ([Path(val_path)] if val_path else [])
    counter = TokenCounter(model or "tokenizer", tokenizer, cfg.max_length) if (model or tokenizer) else None
    report = ValidationReport(
        files=[str(p) for p in paths],
        kind=_detect_kind(paths[0], fmt),
        model=model,
        context_length=counter.context if counter else None,
        rejects_path=str(rejects_path) if rejects_path else None,
    )
    scan = _Scan(cfg, counter, report, DuplicateIndex(cfg.near_dup_threshold, cfg.num_perm))
    with ExitStack() as stack:
        rejects = stack.enter_context(atomic_open(rejects_path)) if rejects_path else None
        for number, p in enumerate(paths):
            _scan_file(scan, number, p, fmt, options, rejects, progress)
    _report_duplicates(scan, paths)
    report.issues.sort(key=lambda i: (report.files.index(i.file), i.line or 0))
    return report


def _detect_kind(path: Path, fmt: str) -> str:
    from tunesmith.data.formats import _first_json_value, detect_format
    from tunesmith.data.formats.openai import is_preference

    if (fmt if fmt != "auto" else detect_format(path)) != "openai":
        return "chat"
    obj = _first_json_value(path)
    return "preference" if isinstance(obj, dict) and is_preference(obj) else "chat"


def _scan_file(
    scan: _Scan, number: int, path: Path, fmt: str, options: LoadOptions | None, rejects: Any, progress: bool
) -> None:
    n_valid_before = scan.n_valid
    scan.systems, scan.system_first = Counter(), {}
    kind = "auto" if scan.report.kind == "preference" else "chat"
    with file_progress(path, f"validating {path.name}", enabled=progress) as advance:
        for rec in iter_records(path, kind=kind, fmt=fmt, options=options):
            advance(len(rec.raw) + 1)
            scan.report.n_records += 1
            _check_record(scan, number, rec, rejects)
            if len(scan.pending) >= scan.cfg.batch_size:
                _flush_tokens(scan)
    _flush_tokens(scan)
    n = scan.n_valid - n_valid_before
    _file_level(scan, str(path), n)


def _issue(
    scan: _Scan, severity: str, rec: Record, code: str, message: str, fld: str | None = None, hint: str = ""
) -> None:
    scan.report.issues.append(
        Issue(
            severity=severity, file=rec.path, line=rec.line, field=fld, code=code, message=message, hint=hint
        )
    )


def _check_record(scan: _Scan, number: int, rec: Record, rejects: Any) -> None:
    problems = rec.all_problems() if rec.example is None else find_errors(rec.example)
    for p in problems:
        _issue(scan, "error", rec, p.code, p.message, p.field, p.hint)
    if problems:
        if rejects is not None:
            reason = "; ".join(
                f"{p.code}: {p.message}" + (f" ({p.field})" if p.field else "") for p in problems
            )
            rejects.write(
                json.dumps(
                    {"file": rec.path, "line": rec.line, "reason": reason, "raw": rec.raw}, ensure_ascii=False
                )
                + "\n"
            )
        return
    ex = rec.example
    assert ex is not None  # records without problems carry an example
    scan.n_valid += 1
    scan.report.n_examples += 1
    for p in find_warnings(ex, scan.cfg):
        _issue(scan, "warning", rec, p.code, p.message, p.field, p.hint)
    scan.dups.add(ex)
    scan.where_file.append(number)
    scan.where_line.append(rec.line)
    _track_system(scan, ex, rec.line)
    if scan.counter is not None:
        scan.pending.append((rec, ""))


def _track_system(scan: _Scan, ex: ChatExample | PreferenceExample, line: int) -> None:
    prompt = ex.input.system_prompt if isinstance(ex, PreferenceExample) else ex.system_prompt
    if prompt in scan.systems or len(scan.systems) < MAX_SYSTEM_VARIANTS:
        scan.systems[prompt] += 1
        scan.system_first.setdefault(prompt, line)


def _flush_tokens(scan: _Scan) -> None:
    """Count tokens of the pending batch and report context, special-token and zero-trained findings."""
    counter, batch = scan.counter, scan.pending
    scan.pending = []
    if counter is None or not batch:
        return
    counts = counter.count([rec.example for rec, _ in batch])
    for (rec, _), count in zip(batch, counts, strict=True):
        ex = rec.example
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
        if (count.n_trained == 0 or count.n_tokens > counter.context) and counter.trained_after_truncation(
            ex
        ) == 0:
            _issue(
                scan,
                "warning",
                rec,
                "zero_trained_tokens",
                "no trainable tokens after loss masking "
                "(every assistant turn has weight 0, or is truncated away)",
                hint="give an assistant turn weight 1, or shorten the prompt",
            )


def _file_level(scan: _Scan, path: str, n: int) -> None:
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
                message=f"only {n} valid "
                f"examples; fewer than {cfg.recommended_examples} rarely fine-tunes well",
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


def _report_duplicates(scan: _Scan, paths: list[Path]) -> None:
    groups = scan.dups.groups()
    files = [str(p) for p in paths]
    for kind, found in (("exact_duplicate", groups.exact), ("near_duplicate", groups.near)):
        for group in found:
            places = [(scan.where_file[i], scan.where_line[i]) for i in group]
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
