"""Entry point for reading a dataset file of any supported format into the internal schema.

``load_examples`` is what other stages call (training, the server's upload check, evaluation): it reads the
whole file, and raises one ``DatasetError`` listing every bad record with file, line and field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from tunesmith.data.schema import ChatExample, PreferenceExample
from tunesmith.errors import DatasetError


@dataclass
class Record:
    """One source record: where it came from, its raw text, and the parsed example or the problem."""

    path: str
    line: int
    raw: str
    example: ChatExample | PreferenceExample | None = None
    error: str | None = None
    field: str | None = None
    hint: str | None = None

    def where(self) -> str:
        """``file line N field F`` for messages."""
        return f"{self.path} line {self.line}" + (f" field {self.field}" if self.field else "")


def iter_jsonl_records(path: str | Path, kind: str = "chat") -> Iterator[Record]:
    """Stream an OpenAI JSONL file (``kind`` chat or preference) as Records, bad lines included."""
    path = Path(path)
    with open(path, "rb") as f:
        for lineno, rawb in enumerate(f, start=1):
            if not rawb.strip():
                continue
            try:
                raw = rawb.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield Record(str(path), lineno, rawb.decode("utf-8", "replace"), error=f"invalid UTF-8 ({exc.reason} "
                             f"at byte {exc.start})", hint="re-encode the file as UTF-8")
                continue
            yield parse_jsonl_line(str(path), lineno, raw, kind)


def parse_jsonl_line(path: str, lineno: int, raw: str, kind: str = "chat") -> Record:
    """Parse one JSONL line into a Record (example or error)."""
    rec = Record(path, lineno, raw.rstrip("\n"))
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        rec.error, rec.hint = f"not valid JSON ({exc.msg} at column {exc.colno})", "fix or remove the line"
        return rec
    if not isinstance(obj, dict):
        rec.error, rec.hint = "not a JSON object", "each line must be one object like {\"messages\": [...]}"
        return rec
    model = PreferenceExample if kind == "preference" else ChatExample
    try:
        rec.example = model.model_validate(obj)
    except ValidationError as exc:
        err = exc.errors()[0]
        rec.field = ".".join(str(p) for p in err["loc"]) or None
        rec.error = "unrecognized key" if err["type"] == "extra_forbidden" else err["msg"]
        rec.hint = "see the OpenAI chat fine-tuning format: {\"messages\": [{\"role\": ..., \"content\": ...}]}"
    return rec


def load_examples(path: str | Path, kind: str = "chat") -> list[ChatExample | PreferenceExample]:
    """Read every example of ``path``; raise one DatasetError naming every bad record.

    Args:
        path: a dataset file.
        kind: ``chat`` (SFT) or ``preference`` (DPO).

    Raises:
        DatasetError: the file is missing, or some records are invalid (all are listed, with line and field).
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file", "check the path")
    examples, bad = [], []
    for rec in iter_jsonl_records(path, kind):
        if rec.example is not None:
            examples.append(rec.example)
        else:
            bad.append(rec)
    if bad:
        lines = "\n".join(f"  {r.where()}: {r.error}" for r in bad[:20])
        more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
        raise DatasetError(f"{path}: {len(bad)} invalid record(s):\n{lines}{more}",
                           f"run `tunesmith data validate {path}` for every problem and fix")
    if not examples:
        raise DatasetError(f"{path}: no examples", "the file is empty; add examples, one JSON object per line")
    return examples
