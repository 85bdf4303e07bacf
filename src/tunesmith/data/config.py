"""DataConfig: everything ``tunesmith data prepare`` needs, typed and documented, one section per step.

YAML keys are these field names (``source.path``, ``dedup.threshold``, ``split.seed``); ``--set key=value``
overrides them. The run writes the resolved config next to its outputs (``config.yaml``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from tunesmith.data.checks import DataCheckConfig
from tunesmith.data.dedup import DedupSettings
from tunesmith.data.source import DataSource
from tunesmith.data.split import SplitConfig
from tunesmith.models.bundled import BUNDLED_NAME


class DataConfig(BaseModel):
    """Everything `tunesmith data prepare` needs: read, validate, dedup, split, write."""

    model_config = ConfigDict(extra="forbid")
    source: DataSource = Field(description="The dataset file to prepare and how to read it.")
    model: str | None = Field(
        default=BUNDLED_NAME,
        description="Model whose tokenizer and context window the token checks and the manifest's token "
        "counts use (name or local dir); null skips them.",
    )
    validation: DataCheckConfig = Field(
        default_factory=DataCheckConfig,
        description="Check thresholds; records with errors go to rejects.jsonl, the rest are kept.",
    )
    dedup: DedupSettings = Field(default_factory=DedupSettings, description="Duplicate removal.")
    split: SplitConfig = Field(default_factory=SplitConfig, description="Shares, seed and grouping.")
    output_dir: Path = Field(
        default=Path("runs/data"),
        description="Folder written (atomically, replacing an old one) with train/val/test.jsonl, "
        "manifest.json, validation.json, rejects.jsonl and config.yaml.",
    )
