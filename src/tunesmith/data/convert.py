"""``tunesmith data convert``: rewrite a dataset in another format (openai, alpaca, sharegpt).

Round trips are lossless where the target can express the example. When it cannot (multi-turn, tool calls or
weights into Alpaca; weights, tools or names into ShareGPT; preference records into either), the record is
skipped, written to the rejects file with the reason, and counted: nothing is folded or silently changed.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from pydantic import BaseModel

from tunesmith.core.atomic import atomic_open
from tunesmith.core.errors import DatasetError
from tunesmith.data.formats import LoadOptions, alpaca, openai, sharegpt
from tunesmith.data.rejects import open_rejects
from tunesmith.data.source import DataSource

WRITERS = {"openai": openai.to_record, "alpaca": alpaca.to_record, "sharegpt": sharegpt.to_record}


class ConvertResult(BaseModel):
    """What a conversion wrote and skipped."""

    written: int
    skipped: int
    invalid: int
    reasons: dict[str, int]
    out: str
    rejects: str | None


def convert_file(
    path: str | Path,
    to: str,
    out: str | Path | None = None,
    fmt: str = "auto",
    options: LoadOptions | None = None,
    rejects: str | Path | None = None,
) -> ConvertResult:
    """Convert ``path`` to ``to`` (default out: ``NAME.TO.jsonl`` beside it): the CLI's form of :func:`convert_source`.

    Raises:
        DatasetError: unknown target format or unreadable input.
    """
    path = Path(path)
    out = Path(out) if out else path.with_name(f"{path.stem}.{to}.jsonl")
    rejects = Path(rejects) if rejects else out.with_name(out.stem + ".rejects.jsonl")
    return convert_source(DataSource.of(path, fmt, options), to, out, rejects)


def convert_source(source: DataSource, to: str, out: Path, rejects: Path) -> ConvertResult:
    """Write ``source`` as format ``to`` to ``out`` (JSONL); what ``to`` cannot express goes to ``rejects``.

    Raises:
        DatasetError: unknown target format or unreadable input.
    """
    if to not in WRITERS:
        raise DatasetError(f"--to {to!r}: cannot write this format", f"use one of {', '.join(WRITERS)}", param="to")
    reasons: Counter = Counter()
    written = invalid = 0
    with atomic_open(out) as fo, open_rejects(rejects) as fr:
        for rec in source.records():
            obj, reason = WRITERS[to](rec.example) if rec.example is not None else (None, f"invalid: {rec.error}")
            if obj is not None:
                fo.write(json.dumps(obj, ensure_ascii=False) + "\n")
                written += 1
                continue
            invalid += rec.example is None
            reasons[reason] += 1
            fr.write(rec, reason)
    skipped = sum(reasons.values()) - invalid
    return ConvertResult(
        written=written,
        skipped=skipped,
        invalid=invalid,
        reasons=dict(reasons),
        out=str(out),
        rejects=str(rejects) if sum(reasons.values()) else None,
    )
