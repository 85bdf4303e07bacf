"""DataConfig: everything ``tunesmith data prepare`` needs, typed and documented, one section per step.

YAML keys are these field names (``source.path``, ``dedup.threshold``, ``split.seed``); ``--set key=value``
overrides them. The run writes the resolved config next to its outputs (``config.yaml``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from tunesmith.data.checks import ValidationSettings
from tunesmith.data.source import DataSource
from tunesmith.data.split import SplitSettings
from tunesmith.models.bundled import BUNDLED_NAME


class DedupSettings(BaseModel):
    """Which duplicates to drop (the first of each group is kept) and when two examples are near-duplicates."""

    model_config = ConfigDict(extra="forbid")
    exact: bool = Field(
        default=True, description="Drop exact duplicates (same roles and contents), keeping the first."
    )
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


class DataConfig(BaseModel):
    """Everything `tunesmith data prepare` needs: read, validate, dedup, split, write."""

    model_config = ConfigDict(extra="forbid")
    source: DataSource = Field(description="The dataset file to prepare and how to read it.")
    model: str | None = Field(
        default=BUNDLED_NAME,
        description="Model whose tokenizer and context window the token checks and the manifest's token "
        "counts use (name or local dir); null skips them.",
    )
    validation: ValidationSettings = Field(
        default_factory=ValidationSettings,
        description="Check thresholds; records with errors go to rejects.jsonl, the rest are kept.",
    )
    dedup: DedupSettings = Field(default_factory=DedupSettings, description="Duplicate removal.")
    split: SplitSettings = Field(default_factory=SplitSettings, description="Shares, seed and grouping.")
    output_dir: Path = Field(
        default=Path("runs/data"),
        description="Folder written (atomically, replacing an old one) with train/val/test.jsonl, "
        "manifest.json, validation.json, rejects.jsonl and config.yaml.",
    )
