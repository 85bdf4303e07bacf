"""What augment and distill share: reading the source file, checking outputs, and the run report."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tunesmith.augment.local import LocalTeacher
from tunesmith.augment.runner import Teacher
from tunesmith.core.schema import ChatExample
from tunesmith.data.checks import find_errors
from tunesmith.data.load import load_numbered_examples


@dataclass
class RunReport:
    """Counts, reject reasons, tokens, cost and retries of one augment or distill run."""

    command: str
    input: str
    output: str
    rejects: str
    teacher: str
    sources: int = 0
    requested: int = 0
    accepted: int = 0
    written: int = 0
    reject_reasons: dict[str, int] = field(default_factory=dict)
    http_requests: int = 0
    local: bool = False  # a teacher or judge ran on this machine (base_url: local)
    generated: int = 0  # answers generated on this machine
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0
    retries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        """How many candidates were dropped."""
        return sum(self.reject_reasons.values())

    def reject(self, reason: str) -> None:
        """Count one reject under its reason's kind (the text before any ``:``, without line numbers)."""
        kind = reason.split(":")[0].split(" of line")[0].strip()
        self.reject_reasons[kind] = self.reject_reasons.get(kind, 0) + 1

    def add_client(self, client: Teacher) -> None:
        """Fold one teacher client's counters into the report (cost becomes n/a if any model is unpriced)."""
        stats = client.stats
        self.http_requests += stats.http_requests
        self.generated += stats.generated
        self.local = self.local or isinstance(client, LocalTeacher)
        self.cache_hits += stats.cache_hits
        self.prompt_tokens += stats.prompt_tokens
        self.completion_tokens += stats.completion_tokens
        self.retries += stats.retries
        cost = client.cost_usd
        self.cost_usd = None if cost is None or self.cost_usd is None else self.cost_usd + cost

    def _work(self, retry_note: str) -> str:
        """HTTP requests (endpoints) and/or answers generated on this machine (local teachers)."""
        parts = []
        if not self.local or self.http_requests:
            parts.append(f"{self.http_requests} HTTP request(s), {len(self.retries)} retried{retry_note}")
        if self.local:
            parts.append(f"{self.generated} generated on this machine")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-able data (``rejected`` included)."""
        return {**asdict(self), "rejected": self.rejected}

    def summary(self) -> str:
        """A few human lines for the CLI."""
        cost = "n/a (no price for the model)" if self.cost_usd is None else f"${self.cost_usd:.4f}"
        reasons = ", ".join(f"{k}: {v}" for k, v in Counter(self.reject_reasons).most_common()) or "none"
        retried = Counter(r["reason"].split(":")[0] for r in self.retries)
        retry_note = f" ({', '.join(f'{k} x{v}' for k, v in retried.most_common())})" if retried else ""
        return (
            f"{self.command}: {self.sources} source item(s) -> {self.accepted} accepted of {self.requested} "
            f"candidates; {self.written} examples written to {self.output}\n"
            f"rejected {self.rejected} ({reasons}); details in {self.rejects}\n"
            f"teacher {self.teacher}: {self._work(retry_note)}, {self.cache_hits} answered from cache\n"
            f"tokens {self.prompt_tokens:,} in / {self.completion_tokens:,} out; estimated cost {cost}"
        )


def load_sources(path: Path) -> list[tuple[int, ChatExample]]:
    """Every chat example of ``path`` (any supported format, detected) with its line number.

    Raises:
        DatasetError: one error listing every bad record, before any teacher call is paid for.
    """
    return [(line, ex) for line, ex in load_numbered_examples(path) if isinstance(ex, ChatExample)]


def check_example(row: dict[str, Any]) -> str | None:
    """Why a generated example is not valid training data, or None (the data stage's schema and checks)."""
    try:
        example = ChatExample.model_validate(row)
    except ValidationError as exc:
        err = exc.errors()[0]
        return f"invalid example: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
    problems = find_errors(example)
    if problems:
        where = f" ({problems[0].field})" if problems[0].field else ""
        return f"invalid example: {problems[0].message}{where}"
    return None
