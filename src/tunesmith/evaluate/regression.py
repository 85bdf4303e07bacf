"""Regression suite: general prompts with `contains` / `not_contains` / `regex` expectations.

It catches forgetting: a fine-tune that breaks general answers fails here.

File format (YAML)::

    cases:
      - prompt: What is the capital of France?
        contains: [Paris]            # all must appear (case-insensitive)
      - prompt: Say hello.
        not_contains: ["{"]          # none may appear
        regex: "(?i)hello|hi"        # must match somewhere
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tunesmith.core.config import format_validation_errors
from tunesmith.core.errors import ConfigError


class RegressionCase(BaseModel):
    """One general prompt and what its answer must (not) contain."""

    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(description="The user message.")
    system: str | None = Field(default=None, description="Optional system prompt.")
    contains: list[str] = Field(default_factory=list, description="Substrings that must all appear.")
    not_contains: list[str] = Field(default_factory=list, description="Substrings that must not appear.")
    regex: str | None = Field(default=None, description="A pattern the answer must match (re.search).")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regex {value!r}: {exc}") from exc
        return value

    def messages(self) -> list[dict[str, str]]:
        """The case as a chat prompt."""
        sys = [{"role": "system", "content": self.system}] if self.system else []
        return [*sys, {"role": "user", "content": self.prompt}]


class RegressionSuite(BaseModel):
    """A list of cases."""

    model_config = ConfigDict(extra="forbid")
    cases: list[RegressionCase] = Field(min_length=1)


def load_suite(path: Path) -> RegressionSuite:
    """Read and validate a regression suite YAML; every problem is listed at once.

    Raises:
        ConfigError: missing file, bad YAML, or invalid cases (with their index and key).
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"regression_suite {path} does not exist", "configs/eval/regression.yaml is an example")
    try:
        return RegressionSuite.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}", "fix the YAML syntax") from exc
    except ValidationError as exc:
        raise ConfigError(
            f"{path}: invalid regression suite:\n" + format_validation_errors(exc),
            "each case needs `prompt` and any of contains / not_contains / regex",
        ) from exc


def check_case(case: RegressionCase, output: str) -> list[str]:
    """The failed expectations of one answer (empty = pass)."""
    low = output.lower()
    fails = [f"missing {s!r}" for s in case.contains if s.lower() not in low]
    fails += [f"contains {s!r}" for s in case.not_contains if s.lower() in low]
    if case.regex and not re.search(case.regex, output):
        fails.append(f"does not match /{case.regex}/")
    return fails
