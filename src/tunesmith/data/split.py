"""``tunesmith data split``: deterministic train/val/test files where near-duplicates never straddle splits.

Examples are grouped by duplicate cluster (exact + MinHash near-duplicates) first; whole groups are shuffled
with the seed and dealt to the split furthest below its target share, per stratum when ``stratify`` is set.
Two streaming passes (signatures, then writing), so memory holds signatures, not examples.
"""

from __future__ import annotations

import json
from array import array
from collections import defaultdict
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tunesmith.core.atomic import atomic_dir, sha256_file
from tunesmith.core.errors import ConfigError, DatasetError
from tunesmith.core.schema import ChatExample, PreferenceExample
from tunesmith.data.dedup import DedupSettings
from tunesmith.data.formats import LoadOptions
from tunesmith.data.near_dup import DuplicateIndex, merge_pairs
from tunesmith.data.source import DataSource

SPLITS = ("train", "val", "test")


class SplitConfig(BaseModel):
    """How to split a dataset (``data split``; a data config's ``split``)."""

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
    group_by: str | None = Field(
        default=None,
        description="A metadata key (e.g. a conversation or user id): examples sharing its value land in "
        "one split, as exact and near-duplicates always do. Examples without the key are grouped by "
        "duplicates only.",
    )

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


class SplitKeys:
    """Each example's stratum and ``group_by`` ids, collected while streaming (ints, not the examples)."""

    def __init__(self, cfg: SplitConfig) -> None:
        self.cfg = cfg
        self.labels = array("q")
        self.groups = array("q")  # -1: no group key
        self.missing: list[int] = []  # lines of examples without the stratify key
        self._label_ids: dict[str | None, int] = {}
        self._group_ids: dict[str, int] = {}

    def add(self, example: ChatExample | PreferenceExample, line: int) -> None:
        """Record one example's stratum and group."""
        label = stratum_of(example, self.cfg.stratify) if self.cfg.stratify else None
        if self.cfg.stratify and label is None:
            self.missing.append(line)
        self.labels.append(self._label_ids.setdefault(label, len(self._label_ids)))
        key = (example.metadata or {}).get(self.cfg.group_by) if self.cfg.group_by else None
        self.groups.append(-1 if key is None else self._group_ids.setdefault(str(key), len(self._group_ids)))

    def check(self, path: Path, param: str = "stratify", where: str = "--stratify") -> None:
        """Raise ConfigError when some example of ``path`` lacks the stratify key (``where``: the flag or config
        key that named it)."""
        if self.missing:
            label = "--stratify label" if where.startswith("--") else f"{where} label"
            raise ConfigError(
                f"{where} {self.cfg.stratify}: {len(self.missing)} example(s) have no such key ({path} lines "
                f"{', '.join(map(str, self.missing[:10]))})",
                f"add the metadata key to every example, or use {label} (the assistant answer)",
                param=param,
            )

    def clusters(self, cluster_of: np.ndarray) -> np.ndarray:
        """Duplicate clusters merged with the ``group_by`` groups: one id per set that must share a split."""
        groups = np.frombuffer(self.groups, dtype=np.int64) if len(self.groups) else np.zeros(0, np.int64)
        keyed = np.flatnonzero(groups >= 0)
        if not len(keyed):
            return cluster_of
        first = {}
        for i in keyed.tolist():
            first.setdefault(int(groups[i]), i)
        j = np.array([first[int(groups[i])] for i in keyed], dtype=np.int64)
        return merge_pairs(cluster_of, keyed, j)


def split_dataset(
    path: str | Path,
    cfg: SplitConfig,
    out: str | Path | None = None,
    fmt: str = "auto",
    options: LoadOptions | None = None,
) -> SplitResult:
    """Split ``path`` into ``out``/{train,val,test}.jsonl + manifest.json (the CLI's file-and-flags form).

    Raises:
        DatasetError: the file has invalid records (split refuses to drop them silently).
        ConfigError: ``stratify`` names a key some examples lack.
    """
    path = Path(path)
    return split_source(DataSource.of(path, fmt, options), cfg, out or path.with_name(f"{path.stem}_split"))


def split_source(
    source: DataSource, cfg: SplitConfig, out: str | Path, dedup: DedupSettings | None = None
) -> SplitResult:
    """Split ``source`` into ``out``/{train,val,test}.jsonl + manifest.json, written atomically as one folder.

    Raises:
        DatasetError: the file has invalid records (split refuses to drop them silently).
        ConfigError: ``stratify`` names a key some examples lack.
    """
    dedup = dedup or DedupSettings()
    index, keys, bad = DuplicateIndex(dedup.threshold, dedup.num_perm), SplitKeys(cfg), []
    for rec in source.records():
        if rec.example is None:
            bad.append(rec)
            continue
        index.add(rec.example)
        keys.add(rec.example, rec.line)
    _refuse_invalid(source.path, bad)
    keys.check(source.path)
    clusters = keys.clusters(index.groups().cluster_of)
    assignment = assign_splits(clusters, np.frombuffer(keys.labels, dtype=np.int64), cfg)
    manifest = {
        "source": str(source.path),
        "source_sha256": sha256_file(source.path),
        "seed": cfg.seed,
        "ratios": {s: getattr(cfg, s) for s in SPLITS},
        "stratify": cfg.stratify,
        "near_dup_threshold": dedup.threshold,
        "n_groups": int(len(set(clusters))),
    }
    manifest["counts"] = _write(source, Path(out), assignment, manifest)
    return SplitResult(counts=manifest["counts"], out=str(out), manifest=manifest)


def _refuse_invalid(path: Path, bad: list) -> None:
    if bad:
        shown = "\n".join(f"  {r.where()}: {r.error}" for r in bad[:10])
        raise DatasetError(
            f"{path}: {len(bad)} invalid record(s):\n{shown}",
            f"run `tunesmith data validate {path} --rejects rejects.jsonl` and fix or drop them",
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


def _write(source: DataSource, out: Path, assignment: np.ndarray, manifest: dict) -> dict[str, int]:
    """Write the three splits and manifest.json into ``out`` in one atomic rename; returns the counts."""
    with atomic_dir(out) as tmp:
        with SplitWriter(tmp) as writer:
            for i, rec in enumerate(source.records()):
                writer.write(SPLITS[assignment[i]], rec.example)
        counts = writer.counts
        (tmp / "manifest.json").write_text(json.dumps({**manifest, "counts": counts}, indent=2) + "\n", "utf-8")
    return counts


class SplitWriter:
    """The three split files in a folder, opened together; ``counts`` holds the rows written to each."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.counts = dict.fromkeys(SPLITS, 0)
        self._files: dict = {}

    def __enter__(self) -> SplitWriter:
        self._files = {s: open(self.folder / f"{s}.jsonl", "w", encoding="utf-8") for s in SPLITS}  # noqa: SIM115
        return self

    def __exit__(self, *exc: object) -> None:
        for f in self._files.values():
            f.close()

    def write(self, split: str, example: ChatExample | PreferenceExample) -> None:
        """Append ``example`` (as OpenAI JSON) to ``split``."""
        self._files[split].write(json.dumps(example.to_openai(), ensure_ascii=False) + "\n")
        self.counts[split] += 1
