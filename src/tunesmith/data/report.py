"""The result of a validation: every :class:`Issue` (severity, file, line, field, code, hint) in one report."""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

from pydantic import BaseModel, Field


class Issue(BaseModel):
    """One problem: ``severity`` error (unusable) or warning (suspicious), where it is and what to do."""

    severity: Literal["error", "warning"]
    file: str
    line: int | None = Field(default=None, description="1-based line; None for file-level findings.")
    field: str | None = Field(default=None, description="Dotted path of the field at fault (messages.2.role).")
    code: str = Field(description="Short machine-readable code, e.g. not_json_object, near_duplicate.")
    message: str
    hint: str = ""
    lines: list[int] | None = Field(default=None, description="All lines of a group (duplicates, leakage).")

    def where(self) -> str:
        """``file line N field F``."""
        return self.file + (f" line {self.line}" if self.line else "") + (f" field {self.field}" if self.field else "")


class ValidationReport(BaseModel):
    """The result of :func:`validate_file` (also what the server returns for an upload check)."""

    files: list[str]
    kind: str = Field(description="chat or preference (detected).")
    model: str | None = None
    context_length: int | None = None
    n_records: int = 0
    n_examples: int = Field(default=0, description="Valid examples (records without errors).")
    issues: list[Issue] = Field(default_factory=list)
    rejects_path: str | None = None

    @property
    def errors(self) -> list[Issue]:
        """Issues with severity error."""
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        """Issues with severity warning."""
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors

    def counts(self) -> dict[str, int]:
        """Number of issues per code."""
        return dict(Counter(i.code for i in self.issues))

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON-able dict, with error/warning totals and per-code counts."""
        data = self.model_dump()
        data.update(ok=self.ok, n_errors=len(self.errors), n_warnings=len(self.warnings), counts=self.counts())
        return data
