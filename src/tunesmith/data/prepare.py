"""``tunesmith data prepare``: one dataset file in, a training-ready folder out.

Entry point: :func:`prepare_dataset`. It reads like its steps: load the source, validate it (records with errors
go to ``rejects.jsonl``), drop duplicates, split leak-free, write. The source is streamed twice (check, then
write); memory holds signatures and a few integers per example, not the examples. The folder appears whole in
one rename, with ``train.jsonl``, ``val.jsonl``, ``test.jsonl``, ``manifest.json`` (counts, hashes, config,
source), ``validation.json``, ``rejects.jsonl`` and the resolved ``config.yaml``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from tunesmith import __version__
from tunesmith.core.atomic import atomic_dir, sha256_file
from tunesmith.core.config import save_config
from tunesmith.core.errors import DatasetError
from tunesmith.data.config import DataConfig
from tunesmith.data.dedup import duplicate_drops
from tunesmith.data.near_dup import DuplicateGroups
from tunesmith.data.rejects import RejectWriter, open_rejects
from tunesmith.data.report import ValidationReport
from tunesmith.data.source import DataSource
from tunesmith.data.split import SPLITS, SplitKeys, SplitWriter, assign_splits
from tunesmith.data.validate import ValidationScan, validate_source

REJECTS, MANIFEST, REPORT, CONFIG = "rejects.jsonl", "manifest.json", "validation.json", "config.yaml"


class PreparedDataset(BaseModel):
    """What :func:`prepare_dataset` wrote: the folder, its files and counts, and the validation report."""

    output_dir: Path
    files: dict[str, Path] = Field(description="train, val, test, manifest, validation, rejects, config.")
    counts: dict[str, int] = Field(description="Records read, invalid, duplicates dropped, rows per split.")
    report: ValidationReport


@dataclass
class _Plan:
    """Which valid example goes where: dropped duplicates with their reason, the others to a split."""

    drops: dict[int, tuple[str, int]]  # valid index -> (kind, index of the kept example)
    split_of: np.ndarray  # (n_valid,) split number, -1 for dropped examples
    n_groups: int


def prepare_dataset(cfg: DataConfig, tokenizer: Any = None, progress: bool = False) -> PreparedDataset:
    """Validate, dedup and split ``cfg.source`` into ``cfg.output_dir`` (written atomically as one folder).

    Args:
        cfg: the data config (source, validation thresholds, dedup, split, model, output folder).
        tokenizer: an already loaded tokenizer for ``cfg.model`` (skips loading it).
        progress: show a progress bar while validating.

    Returns:
        A :class:`PreparedDataset` naming the files written, their counts and the validation report.

    Raises:
        DatasetError: the source is missing or unreadable, or too few valid examples are left.
        ConfigError: ``split.stratify`` names a key some examples lack.
        ModelError: ``cfg.model`` cannot be found locally.
    """
    source, keys = cfg.source, SplitKeys(cfg.split)
    with atomic_dir(cfg.output_dir) as tmp:
        with open_rejects(tmp / REJECTS) as rejects:
            scan = _validate(source, cfg, rejects, keys, tokenizer, progress)
            groups = scan.dups.groups()
            drops = duplicate_drops(groups, cfg.dedup)
            plan = _split(groups, drops, keys, cfg)
            counts = _write_splits(source, scan, plan, rejects, tmp)
        files = _write_records(cfg, scan, plan, counts, tmp)
    return PreparedDataset(
        output_dir=cfg.output_dir,
        files={name: cfg.output_dir / path.name for name, path in files.items()},
        counts=counts,
        report=scan.report,
    )


def _validate(
    source: DataSource, cfg: DataConfig, rejects: RejectWriter, keys: SplitKeys, tokenizer: Any, progress: bool
) -> ValidationScan:
    """The validation pass (records with errors go to ``rejects``); raise when the data is unusable as a whole.

    Record-level errors only drop their record; a file-level error (too few valid examples) or a stratify key
    that some examples lack stops the run.
    """
    scan = validate_source(source, cfg, rejects=rejects, tokenizer=tokenizer, progress=progress, observe=keys.add)
    fatal = [i for i in scan.report.errors if i.line is None]
    if fatal:
        raise DatasetError("; ".join(f"{i.file}: {i.message}" for i in fatal), fatal[0].hint or "fix the source file")
    keys.check(source.path, param="split.stratify", where="split.stratify:")
    return scan


def _split(groups: DuplicateGroups, drops: dict, keys: SplitKeys, cfg: DataConfig) -> _Plan:
    """Deal the kept examples' leak-free groups (duplicates, ``split.group_by``) to train, val and test."""
    n = len(groups.cluster_of)
    keep = np.ones(n, dtype=bool)
    keep[list(drops)] = False
    kept = np.flatnonzero(keep)
    clusters = keys.clusters(groups.cluster_of)
    labels = np.frombuffer(keys.labels, dtype=np.int64) if len(keys.labels) else np.zeros(0, np.int64)
    split_of = np.full(n, -1, dtype=np.int8)
    if len(kept):
        split_of[kept] = assign_splits(clusters[kept], labels[kept], cfg.split)
    return _Plan(drops, split_of, int(len(set(clusters[kept].tolist()))))


def _write_splits(
    source: DataSource, scan: ValidationScan, plan: _Plan, rejects: RejectWriter, folder: Path
) -> dict[str, int]:
    """Second pass: each kept example to its split file, each dropped duplicate to the rejects file."""
    index = -1
    with SplitWriter(folder) as writer:
        for number, rec in enumerate(source.records()):
            if number in scan.invalid:
                continue  # already in the rejects file, with its problems
            index += 1
            if index in plan.drops:
                kind, first = plan.drops[index]
                rejects.write(rec, f"{kind} of line {scan.lines[first]}")
            else:
                writer.write(SPLITS[plan.split_of[index]], rec.example)
    n_exact = sum(1 for kind, _ in plan.drops.values() if kind == "exact duplicate")
    return {
        "records": scan.report.n_records,
        "invalid": len(scan.invalid),
        "exact_duplicates": n_exact,
        "near_duplicates": len(plan.drops) - n_exact,
        **writer.counts,
    }


def _write_records(
    cfg: DataConfig, scan: ValidationScan, plan: _Plan, counts: dict[str, int], folder: Path
) -> dict[str, Path]:
    """validation.json, config.yaml and manifest.json (counts, file hashes, tokens, config, source)."""
    files = {s: folder / f"{s}.jsonl" for s in SPLITS}
    files.update(rejects=folder / REJECTS, validation=folder / REPORT, config=folder / CONFIG)
    files["validation"].write_text(json.dumps(scan.report.to_json(), indent=2, ensure_ascii=False) + "\n", "utf-8")
    save_config(cfg, files["config"])
    manifest = {
        "tunesmith_version": __version__,
        "source": {
            "path": str(cfg.source.path),
            "sha256": sha256_file(cfg.source.path),
            "format": cfg.source.format,
            "kind": scan.report.kind,
        },
        "counts": counts,
        "n_groups": plan.n_groups,
        "tokens": _split_tokens(scan, plan),
        "files": {path.name: {"sha256": sha256_file(path)} for path in files.values() if path.suffix == ".jsonl"},
        "config": cfg.model_dump(mode="json"),
    }
    files["manifest"] = folder / MANIFEST
    files["manifest"].write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", "utf-8")
    return files


def _split_tokens(scan: ValidationScan, plan: _Plan) -> dict[str, int] | None:
    """Tokens per split (chat template included) with ``cfg.model``'s tokenizer; None without a model."""
    if scan.counter is None:
        return None
    tokens = np.frombuffer(scan.tokens, dtype=np.int64) if len(scan.tokens) else np.zeros(0, np.int64)
    return {s: int(tokens[(plan.split_of == k) & (tokens >= 0)].sum()) for k, s in enumerate(SPLITS)}
