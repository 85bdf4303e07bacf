"""The price table: USD per 1M tokens by model, from an editable YAML file with dated entries.

Every stage that prices tokens reads it (data stats, the teacher client, evaluation, the decision); the ROI
arithmetic built on it is the decision stage's (:mod:`tunesmith.advise.costs`).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tunesmith.core.errors import ConfigError


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
        raise ConfigError(
            f"no price for model {model!r} in the price table",
            f"add it under `models:` in your price table (known: {', '.join(sorted(self.models))})",
        )

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


SHIPPED_PRICES = "tunesmith/core/prices.yaml"
PRICE_ENTRY_HINT = "each entry under `models:` needs as_of, input and output (USD per 1M tokens)"


def load_price_table(path: str | Path | None = None) -> PriceTable:
    """The price table from ``path``, ``$TUNESMITH_PRICES``, or the one shipped with the package.

    Raises:
        ConfigError: the file is missing or unreadable, is not YAML, or does not hold a valid table.
    """
    origin = "--prices / `prices:`" if path else "$TUNESMITH_PRICES"
    path = path or os.environ.get("TUNESMITH_PRICES")
    if not path:
        text = resources.files("tunesmith.core").joinpath("prices.yaml").read_text("utf-8")
        return parse_price_table(text, "prices.yaml")
    return parse_price_table(read_price_file(Path(path), origin), str(path))


def read_price_file(path: Path, origin: str) -> str:
    """The text of a user's price table; ``origin`` names the flag or variable that pointed at it."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        what = "no such file" if isinstance(exc, FileNotFoundError) else f"cannot be read ({exc})"
        raise ConfigError(
            f"price table {path} (from {origin}): {what}",
            f"point {origin} at a UTF-8 YAML price table (start from a copy of {SHIPPED_PRICES}), "
            "or drop it to use the shipped one",
        ) from exc


def parse_price_table(text: str, source: str) -> PriceTable:
    """Validate a price table's YAML text; ``source`` names the file in errors."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"price table {source} is not valid YAML: {exc}".replace("\n", " "),
            "fix the YAML syntax at the line named above",
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        found = data.get("models") if isinstance(data, dict) else data
        got = "nothing" if found is None else f"a {type(found).__name__}"
        raise ConfigError(
            f"price table {source}: expected a mapping with a `models:` key of model name -> prices, got {got}",
            f"write `models:` at the top, then one entry per model; {PRICE_ENTRY_HINT}",
        )
    try:
        return PriceTable.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(
            f"price table {source}: {exc.error_count()} problem(s): {problems}", PRICE_ENTRY_HINT
        ) from exc
