"""The price table (editable YAML with dated entries) and token-cost arithmetic."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tunesmith.errors import ConfigError


class ModelPrice(BaseModel):
    """USD per 1M tokens for one model."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["hosted", "local"] = Field(default="hosted", description="Pay-per-token API or self-hosted.")
    as_of: str = Field(description="Date the prices were read (YYYY-MM-DD).")
    input: float = Field(ge=0, description="USD per 1M prompt tokens.")
    output: float = Field(ge=0, description="USD per 1M completion tokens.")
    training: float | None = Field(default=None, ge=0, description="USD per 1M trained tokens, if trainable.")


class PriceTable(BaseModel):
    """Prices by model name."""

    model_config = ConfigDict(extra="forbid")
    models: dict[str, ModelPrice]

    def price(self, model: str) -> ModelPrice:
        """The entry for ``model`` (a ``ft:BASE:...`` name falls back to ``ft:BASE``, then ``BASE``)."""
        for key in _candidates(model):
            if key in self.models:
                return self.models[key]
        raise ConfigError(f"no price for model {model!r} in the price table",
                          f"add it under `models:` in your price table (known: {', '.join(sorted(self.models))})")

    def query_cost(self, model: str, prompt_tokens: float, completion_tokens: float) -> float:
        """USD for one query."""
        p = self.price(model)
        return (prompt_tokens * p.input + completion_tokens * p.output) / 1e6

    def training_cost(self, model: str, trained_tokens: float) -> float:
        """USD to train on ``trained_tokens`` (examples' tokens x epochs)."""
        p = self.price(model)
        if p.training is None:
            raise ConfigError(f"model {model!r} has no training price", "add `training:` to its price-table entry")
        return trained_tokens * p.training / 1e6


def _candidates(model: str) -> list[str]:
    parts = model.split(":")
    out = [model]
    if model.startswith("ft:") and len(parts) > 1:
        out += [f"ft:{parts[1]}", parts[1]]
    return out


def load_price_table(path: str | Path | None = None) -> PriceTable:
    """The price table from ``path``, ``$TUNESMITH_PRICES``, or the one shipped with the package."""
    path = path or os.environ.get("TUNESMITH_PRICES")
    if path:
        text, source = Path(path).read_text(encoding="utf-8"), str(path)
    else:
        text, source = resources.files("tunesmith.advise").joinpath("prices.yaml").read_text("utf-8"), "prices.yaml"
    try:
        return PriceTable.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"price table {source} is invalid: {exc}", "fix the entry named above") from exc
