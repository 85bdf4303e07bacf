"""Load a stage's config: defaults < YAML file < ``--set key=value`` overrides, validated all at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from tunesmith.core.atomic import write_text_atomic
from tunesmith.core.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def load_config(model_cls: type[M], path: str | Path | None = None, overrides: list[str] | None = None) -> M:
    """Build and validate ``model_cls`` from a YAML file and ``key.sub=value`` overrides.

    Args:
        model_cls: the stage's pydantic config class.
        path: a YAML file (optional).
        overrides: ``--set`` strings; values are parsed as YAML (``2e-4``, ``true``, ``[a, b]``).

    Raises:
        ConfigError: unreadable YAML, a malformed override, or every validation error at once with its key.
    """
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist", "check the path (configs/ has examples)")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}", "fix the YAML syntax at the line shown") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of keys", "write `key: value` lines")
        data = loaded or {}
    for item in overrides or []:
        apply_override(data, item)
    return validate_config(model_cls, data, source)


def validate_config(
    model_cls: type[M],
    data: dict[str, Any],
    source: str,
    hint: str = "fix the keys listed above (`--help` and docs/configuration.md list every key)",
) -> M:
    """Validate ``data`` as ``model_cls``; every error at once, with its key, in one ConfigError.

    Raises:
        ConfigError: naming ``source`` (a file, a command) and each invalid key.
    """
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            f"{source}: {exc.error_count()} invalid setting(s):\n" + format_validation_errors(exc), hint
        ) from exc


def apply_override(data: dict[str, Any], item: str) -> None:
    """Apply one ``a.b.c=value`` override to nested ``data`` in place."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE", "e.g. --set learning_rate=2e-4 --set lora.r=8")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {item!r}: the value is not valid YAML", "quote strings with special chars") from exc
    node = data
    parts = key.strip().split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {item!r}: {part!r} is not a section", "override a key inside a section")
        node = child
    node[parts[-1]] = value


def format_validation_errors(exc: ValidationError) -> str:
    """One ``  key.path: message`` line per pydantic error."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = "unknown key (typo?)" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"  {loc}: {msg}")
    return "\n".join(lines)


def save_config(cfg: BaseModel, path: str | Path) -> None:
    """Write the resolved config as YAML next to the outputs (a run is reproduced from it)."""
    text = yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    write_text_atomic(path, text)
