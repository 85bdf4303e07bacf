"""``tunesmith data dedup``: drop exact and near-duplicate examples, keeping the first of each group."""

from __future__ import annotations

import json
from array import array
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from tunesmith.core.atomic import atomic_open
from tunesmith.data.formats import LoadOptions
from tunesmith.data.near_dup import DuplicateGroups, DuplicateIndex
from tunesmith.data.rejects import open_rejects
from tunesmith.data.source import DataSource


class DedupSettings(BaseModel):
    """Which duplicates to drop (the first of each group is kept) and when two examples are near-duplicates."""

    model_config = ConfigDict(extra="forbid")
    exact: bool = Field(default=True, description="Drop exact duplicates (same roles and contents), keeping the first.")
    near: bool = Field(
        default=True,
        description="Drop near-duplicates, keeping the first of each group. false keeps them, and the split "
        "still puts each group in one split.",
    )
    threshold: float = Field(
        default=0.85,
        gt=0,
        le=1,
        description="Estimated Jaccard similarity (MinHash over word bigrams of normalised text, system "
        "prompts left out) at which two examples are near-duplicates.",
    )
    num_perm: int = Field(
        default=64, ge=8, le=256, description="MinHash permutations (memory: 2 bytes each per example)."
    )


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
    """Write ``path`` without duplicates to ``out`` (the CLI's file-and-flags form of :func:`dedup_source`)."""
    out = Path(out)
    settings = DedupSettings(threshold=threshold, num_perm=num_perm)
    rejects = Path(rejects) if rejects else out.with_name(out.stem + ".rejects.jsonl")
    return dedup_source(DataSource.of(path, fmt, options), settings, out, rejects)


def dedup_source(source: DataSource, settings: DedupSettings, out: Path, rejects: Path) -> DedupResult:
    """Write ``source`` without duplicates to ``out`` (OpenAI JSONL); dropped and invalid ones to ``rejects``.

    Two streaming passes: the first computes MinHash signatures, the second writes. Every dropped record is
    written to the rejects file with the line it duplicates, so nothing disappears silently.
    """
    index, lines = DuplicateIndex(settings.threshold, settings.num_perm), array("q")
    for rec in source.records():
        if rec.example is not None:
            index.add(rec.example)
            lines.append(rec.line)
    drop = duplicate_drops(index.groups(), settings)
    counts = {"exact duplicate": 0, "near duplicate": 0, "invalid": 0, "kept": 0}
    i = 0
    with atomic_open(out) as fo, open_rejects(rejects) as fr:
        for rec in source.records():
            if rec.example is None:
                fr.write(rec, f"invalid: {rec.error}")
                counts["invalid"] += 1
                continue
            if i in drop:
                kind, first = drop[i]
                fr.write(rec, f"{kind} of line {lines[first]}")
                counts[kind] += 1
            else:
                fo.write(json.dumps(rec.example.to_openai(), ensure_ascii=False) + "\n")
                counts["kept"] += 1
            i += 1
    return DedupResult(
        kept=counts["kept"],
        removed_exact=counts["exact duplicate"],
        removed_near=counts["near duplicate"],
        invalid=counts["invalid"],
        out=str(out),
        rejects=str(rejects),
    )


def duplicate_drops(groups: DuplicateGroups, settings: DedupSettings) -> dict[int, tuple[str, int]]:
    """Which examples to drop: index -> (``exact duplicate`` or ``near duplicate``, index of the kept one).

    The first example of each group is kept; ``settings.exact`` / ``settings.near`` say which groups count.
    """
    drop: dict[int, tuple[str, int]] = {}
    for kind, found, on in (
        ("exact duplicate", groups.exact, settings.exact),
        ("near duplicate", groups.near, settings.near),
    ):
        for group in found if on else []:
            for i in group[1:]:
                drop.setdefault(i, (kind, group[0]))
    return drop
