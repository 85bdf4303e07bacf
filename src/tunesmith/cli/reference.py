"""Generate the configuration reference (docs/configuration.md) from the pydantic config models."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

# (title, "module:Class", how it is used)
CONFIG_MODELS: list[tuple[str, str, str]] = [
    ("Data preparation", "tunesmith.data.config:DataConfig", "`tunesmith data prepare CONFIG.yaml [--set key=value]`"),
    ("Training", "tunesmith.train.config:TrainConfig", "`tunesmith train CONFIG.yaml [--set key=value]`"),
    ("Evaluation", "tunesmith.evaluate.config:EvalConfig", "`tunesmith eval CONFIG.yaml [--set key=value]`"),
    ("Decision ladder", "tunesmith.ladder.config:DecideConfig", "`tunesmith decide [CONFIG.yaml] [--set key=value]`"),
    (
        "Augmentation",
        "tunesmith.augment.config:AugmentConfig",
        "`tunesmith data augment CONFIG.yaml [--set key=value]` (or `FILE --teacher MODEL` and flags)",
    ),
    (
        "Distillation",
        "tunesmith.augment.config:DistillConfig",
        "`tunesmith data distill CONFIG.yaml [--set key=value]` (or `PROMPTS --teacher MODEL` and flags)",
    ),
    (
        "Recipe",
        "tunesmith.evaluate.recipe:Recipe",
        "`recipes/<rung>.yaml` written by decide; `tunesmith deploy RECIPE.yaml`",
    ),
    (
        "Server",
        "tunesmith.serve.settings:ServeSettings",
        "`tunesmith serve` flags and `TUNESMITH_*` variables",
    ),
    ("Task profile", "tunesmith.advise.profile:TaskProfile", "`tunesmith advise PROFILE.yaml`"),
    ("Demo", "tunesmith.cli.demo:DemoConfig", "`tunesmith demo [--set key=value]`"),
]


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    text = text or str(annotation).replace("typing.", "").replace("pathlib.", "")
    return text.replace("|", "\\|")


def _default(field: FieldInfo) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "**required**"
    value = field.default_factory() if field.default_factory is not None else field.default
    if isinstance(value, BaseModel):
        return "(section)"
    if isinstance(value, Path):
        return f"`{value}`"
    return f"`{value!r}`" if value is not None else "`None`"


def model_rows(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Markdown table rows for ``model``'s fields, sub-models flattened as ``section.key``."""
    rows = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            rows.extend(model_rows(ann, prefix=f"{key}."))
            continue
        desc = (field.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{key}` | {_type_name(ann)} | {_default(field)} | {desc} |")
    return rows


def render_reference() -> str:
    """The whole configuration reference as Markdown."""
    out = [
        "# Configuration reference",
        "",
        "Generated from the pydantic models by `tunesmith reference > docs/configuration.md`; a test keeps "
        "it in sync. Precedence: defaults < YAML < `--set key=value` (nested keys with dots: "
        "`--set lora.r=8`). Unknown keys are errors.",
        "",
    ]
    for title, target, usage in CONFIG_MODELS:
        module, _, cls_name = target.partition(":")
        cls = getattr(importlib.import_module(module), cls_name)
        out += [
            f"## {title} — `{cls_name}`",
            "",
            f"Used by {usage}.",
            "",
            "| key | type | default | description |",
            "|---|---|---|---|",
            *model_rows(cls),
            "",
        ]
    return "\n".join(out)


def reference_cmd() -> None:
    """Print the configuration reference (docs/configuration.md) generated from the config models."""
    typer.echo(render_reference())
