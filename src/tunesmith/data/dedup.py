"""``tunesmith data dedup``: drop exact and near-duplicate examples, keeping the first of each group."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from tunesmith.atomic import atomic_open
from tunesmith.data.formats import LoadOptions
from tunesmith.data.load import iter_records
from tunesmith.data.near_dup import DuplicateIndex


class DedupResult(BaseModel):
    """Counts and paths of a dedup run."""

    kept: int
    removed_exact: int
    removed_near: int
    invalid: int
    out: str
    rejects: str


def dedup_file(
    path: str | Path,
    out: str | Path,
    threshold: float = 0.85,
    rejects: str | Path | None = None,
    fmt: str = "auto",
    options: LoadOptions | None = None,
    num_perm: int = 64,
) -> DedupResult:
    """Write ``path`` without duplicates to ``out`` (OpenAI JSONL); dropped and invalid ones to ``rejects``.

    Two streaming passes: the first computes MinHash signatures, the second writes. Every dropped record is
    written to the rejects file with the line it duplicates, so nothing disappears silently.
    """
    out = Path(out)
    rejects = Path(rejects) if rejects else out.with_name(out.stem + ".rejects.jsonl")
    index, lines = DuplicateIndex(threshold, num_perm), []
    for rec in iter_records(
        path, kind="auto" if fmt in ("auto", "openai") else "chat", fmt=fmt, options=options
    ):
        if rec.example is not None:
            index.add(rec.example)
            lines.append(rec.line)
    groups = index.groups()
    drop: dict[int, tuple[str, int]] = {}
    for kind, found in (("exact duplicate", groups.exact), ("near duplicate", groups.near)):
        for group in found:
            for i in group[1:]:
                drop.setdefault(i, (kind, lines[group[0]]))
    counts = {"exact duplicate": 0, "near duplicate": 0, "invalid": 0, "kept": 0}
    i = 0
    with atomic_open(out) as fo, atomic_open(rejects) as fr:
        for rec in iter_records(
            path, kind="auto" if fmt in ("auto", "openai") else "chat", fmt=fmt, options=options
        ):
            if rec.example is None:
                reason, counts["invalid"] = f"invalid: {rec.error}", counts["invalid"] + 1
            elif i in drop:
                kind, first = drop[i]
                reason = f"{kind} of line {first}"
                counts[kind] += 1
            else:
                reason = None
            if rec.example is not None:
                i += 1
            if reason is None:
                fo.write(json.dumps(rec.example.to_openai(), ensure_ascii=False) + "\n")
                counts["kept"] += 1
            else:
                fr.write(
                    json.dumps(
                        {"file": rec.path, "line": rec.line, "reason": reason, "raw": rec.raw},
                        ensure_ascii=False,
                    )
                    + "\n"
                )
    return DedupResult(
        kept=counts["kept"],
        removed_exact=counts["exact duplicate"],
        removed_near=counts["near duplicate"],
        invalid=counts["invalid"],
        out=str(out),
        rejects=str(rejects),
    )
