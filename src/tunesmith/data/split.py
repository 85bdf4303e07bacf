"""``tunesmith data split``: deterministic train/val/test files where near-duplicates never straddle splits.

Examples are grouped by duplicate cluster (exact + MinHash near-duplicates) first; whole groups are shuffled
with the seed and dealt to the split furthest below its target share, per stratum when ``stratify`` is set.
Two streaming passes (signatures, then writing), so memory holds signatures, not examples.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tunesmith.atomic import atomic_dir, sha256_file
from tunesmith.data.formats import LoadOptions
from tunesmith.data.load import iter_records
from tunesmith.data.near_dup import DuplicateIndex
from tunesmith.data.schema import ChatExample, PreferenceExample
from tunesmith.errors import ConfigError, DatasetError

SPLITS = ("train", "val", "test")


class SplitConfig(BaseModel):
    """How to split a dataset."""

    model_config = ConfigDict(extra="forbid")
    train: float = Field(default=0.8, ge=0, le=1, description="Share of examples for training.")
    val: float = Field(default=0.1, ge=0, le=1, description="Share for validation.")
    test: float = Field(default=0.1, ge=0, le=1, description="Share for the held-out test set.")
    seed: int = Field(default=0, description="Random seed: the same seed gives the same split.")
    stratify: str | None = Field(
        default=None,
        description="Keep label shares equal across splits: a "
        "metadata key, or `label` (metadata label, else the last assistant answer).",
    )
    threshold: float = Field(default=0.85, gt=0, le=1, description="Near-duplicate Jaccard threshold.")

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitConfig:
        if abs(self.train + self.val + self.test - 1) > 1e-6:
            raise ValueError(f"train + val + test must be 1 (got {self.train + self.val + self.test:g})")
        return self


class SplitResult(BaseModel):
    """Counts and files of a split."""

    counts: dict[str, int]
    out: str
    manifest: dict


def stratum_of(example: ChatExample | PreferenceExample, key: str) -> str | None:
    """The stratify label of an example: metadata[key], or for ``label`` the last assistant answer."""
    meta = example.metadata or {}
    if key in meta:
        return str(meta[key])
    if key == "label" and isinstance(example, ChatExample):
        answers = [m.content for m in example.messages if m.role == "assistant"]
        return (answers[-1] or "").strip() if answers else None
    return None


def split_dataset(
    path: str | Path,
    cfg: SplitConfig,
    out: str | Path | None = None,
    fmt: str = "auto",
    options: LoadOptions | None = None,
) -> SplitResult:
    """Split ``path`` into ``out``/{train,val,test}.jsonl + manifest.json (written atomically as one folder).

    Raises:
        DatasetError: the file has invalid records (split refuses to drop them silently).
        ConfigError: ``stratify`` names a key some examples lack.
    """
    path = Path(path)
    out = Path(out) if out else path.with_name(f"{path.stem}_split")
    kind = "auto" if fmt in ("auto", "openai") else "chat"
    index, labels, bad, missing = DuplicateIndex(cfg.threshold), [], [], []
    label_ids: dict[str | None, int] = {}
    for rec in iter_records(path, kind=kind, fmt=fmt, options=options):
        if rec.example is None:
            bad.append(rec)
            continue
        index.add(rec.example)
        label = stratum_of(rec.example, cfg.stratify) if cfg.stratify else None
        if cfg.stratify and label is None:
            missing.append(rec.line)
        labels.append(label_ids.setdefault(label, len(label_ids)))
    _refuse(path, bad, missing, cfg)
    clusters = index.groups().cluster_of
    assignment = assign_splits(clusters, np.asarray(labels), cfg)
    manifest = {
        "source": str(path),
        "source_sha256": sha256_file(path),
        "seed": cfg.seed,
        "ratios": {s: getattr(cfg, s) for s in SPLITS},
        "stratify": cfg.stratify,
        "near_dup_threshold": cfg.threshold,
        "n_groups": int(len(set(clusters))),
    }
    manifest["counts"] = _write(path, out, kind, fmt, options, assignment, manifest)
    return SplitResult(counts=manifest["counts"], out=str(out), manifest=manifest)


def _refuse(path: Path, bad: list, missing: list[int], cfg: SplitConfig) -> None:
    if bad:
        shown = "\n".join(f"  {r.where()}: {r.error}" for r in bad[:10])
        raise DatasetError(
            f"{path}: {len(bad)} invalid record(s):\n{shown}",
            f"run `tunesmith data validate {path} --rejects rejects.jsonl` and fix or drop them",
        )
    if missing:
        raise ConfigError(
            f"--stratify {cfg.stratify}: {len(missing)} example(s) have no such key (lines "
            f"{', '.join(map(str, missing[:10]))})",
            "add the metadata key to every example, or use --stratify label (the assistant answer)",
            param="stratify",
        )


def assign_splits(cluster_of: np.ndarray, labels: np.ndarray, cfg: SplitConfig) -> np.ndarray:
    """Split index (0 train, 1 val, 2 test) of every example; a duplicate cluster gets one split."""
    ratios = np.array([cfg.train, cfg.val, cfg.test])
    groups: dict[int, list[int]] = defaultdict(list)
    for i, c in enumerate(cluster_of):
        groups[int(c)].append(i)
    strata: dict[int, list[list[int]]] = defaultdict(list)
    for members in sorted(groups.values(), key=lambda m: m[0]):
        strata[int(labels[members[0]]) if len(labels) else 0].append(members)
    rng = np.random.default_rng(cfg.seed)
    out = np.zeros(len(cluster_of), dtype=np.int8)
    for key in sorted(strata):
        stratum = strata[key]
        order = rng.permutation(len(stratum))
        total = sum(len(g) for g in stratum)
        filled = np.zeros(3)
        for gi in order:
            deficit = ratios * (filled.sum() + len(stratum[gi])) - filled
            deficit[ratios == 0] = -np.inf
            split = int(np.argmax(deficit))
            out[stratum[gi]] = split
            filled[split] += len(stratum[gi])
        assert filled.sum() == total
    return out


def _write(
    path: Path, out: Path, kind: str, fmt: str, options: LoadOptions | None, assignment: np.ndarray,
    manifest: dict,
) -> dict[str, int]:
    """Write the three splits and manifest.json into ``out`` in one atomic rename; returns the counts."""
    counts = dict.fromkeys(SPLITS, 0)
    with atomic_dir(out) as tmp:
        files = {s: open(tmp / f"{s}.jsonl", "w", encoding="utf-8") for s in SPLITS}  # noqa: SIM115
        try:
            records = iter_records(path, kind=kind, fmt=fmt, options=options)
            for i, rec in enumerate(records):
                split = SPLITS[assignment[i]]
                files[split].write(json.dumps(rec.example.to_openai(), ensure_ascii=False) + "\n")
                counts[split] += 1
        finally:
            for f in files.values():
                f.close()
        (tmp / "manifest.json").write_text(json.dumps({**manifest, "counts": counts}, indent=2) + "\n", "utf-8")
    return counts
