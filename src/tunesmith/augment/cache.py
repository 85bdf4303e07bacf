"""An append-only, fsync'd JSONL cache of teacher responses keyed by a hash of the request.

An interrupted run loses at most the requests that were in flight: every finished response is on disk before
the next one is asked for, and a rerun answers those from the cache instead of paying for them again.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tunesmith.core.errors import DatasetError


def request_key(model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of (model, messages, params): equal requests get equal keys."""
    blob = json.dumps(
        {"model": model, "messages": messages, "params": params},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass
class CachedResponse:
    """What is kept of one teacher response."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    model: str


class RequestCache:
    """Append-only JSONL: one ``{"key", "response"}`` object per line, each flushed and fsync'd.

    Args:
        path: the cache file (created on first write; its folder too).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._entries: dict[str, CachedResponse] = {}
        self.torn_lines = 0
        if self.path.exists():
            self._load()
        self._file = None

    def _load(self) -> None:
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]  # a kill mid-write leaves a torn last line: drop it
        self.torn_lines = int(len(complete) < len(data))
        self._good_bytes = len(complete)
        for lineno, line in enumerate(complete.decode("utf-8", "replace").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                self._entries[row["key"]] = CachedResponse(**row["response"])
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DatasetError(
                    f"{self.path} line {lineno}: not a cache entry ({exc})",
                    "delete the cache file (responses will be requested again)",
                ) from exc

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def get(self, key: str) -> CachedResponse | None:
        """The cached response for ``key``, or None."""
        return self._entries.get(key)

    def put(self, key: str, response: CachedResponse) -> None:
        """Append one entry and fsync it before returning."""
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.torn_lines:
                os.truncate(self.path, self._good_bytes)
                self.torn_lines = 0
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open across puts
        self._file.write(json.dumps({"key": key, "response": asdict(response)}, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._entries[key] = response

    def close(self) -> None:
        """Close the file handle (entries are already on disk)."""
        if self._file is not None:
            self._file.close()
            self._file = None
