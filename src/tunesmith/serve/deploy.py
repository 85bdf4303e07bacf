"""Deploy and roll back aliases from the command line (the same records POST /v1/aliases writes).

The command line may also deploy a local run directory or a recipe YAML (see :mod:`tunesmith.serve.recipes`).
An optional evaluation gate (``--require-report``) refuses a deploy whose report does not pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.core.errors import ConfigError, EvalError, ModelError, ServeError
from tunesmith.evaluate.gate import check_gate
from tunesmith.evaluate.recipe import load_recipe
from tunesmith.serve.names import recipe_target, resolve_target, run_dir_target
from tunesmith.serve.recipes import (
    RECIPE_PREFIX,
    freeze_recipe,
    is_recipe_file,
    recipe_file_problems,
    with_absolute_paths,
)
from tunesmith.serve.schemas import ALIAS_NAME_PATTERN, MAX_ALIAS_NAME
from tunesmith.serve.settings import ServeSettings
from tunesmith.store import repo
from tunesmith.store.db import Database

RECIPE_HINT = (
    "fix the keys listed in the recipe (docs/server.md, 'Recipes behind aliases', describes them) or re-run "
    "`tunesmith decide` to write it again; the alias was not changed"
)


@dataclass
class GateSpec:
    """``--require-report`` and its thresholds."""

    report: Path
    metric: str | None = None
    min_gain: float | None = None
    max_regression: float | None = None


def deploy_alias(
    db: Database, settings: ServeSettings, name: str, model: str, who: str, allow_run_dirs: bool = False
) -> Any:
    """Point ``name`` at ``model`` once ``model`` resolves; returns the recorded change.

    ``allow_run_dirs`` also accepts a local `tunesmith train` run directory, stored as its absolute path, and a
    recipe YAML, stored as a frozen copy (:func:`deploy_recipe`): the CLI and the demo pass it, the HTTP endpoint
    does not (a remote client never names paths on the server's disk).

    Raises:
        ServeError: the alias name is not a valid name, or the alias would point at itself.
        AliasError: the change would close an alias cycle or chain too long (the new graph is checked).
        ModelError: ``model`` is not a known model or checkpoint.
        ConfigError: ``model`` is a recipe file that is missing or cannot be served (every problem listed).
    """
    if not re.fullmatch(ALIAS_NAME_PATTERN, name) or len(name) > MAX_ALIAS_NAME:
        raise ServeError(
            f"alias name {name!r} is not allowed",
            f"use up to {MAX_ALIAS_NAME} letters, digits, '.', '_' or '-', not starting with '.'",
            param="name",
        )
    if model == name:
        raise ServeError(f"alias {name!r} cannot point at itself", "name a model or checkpoint", param="model")
    if allow_run_dirs and is_recipe_file(model):
        return repo.set_alias(db, name, deploy_recipe(Path(model), settings), who)
    run = run_dir_target(model, str(Path(model).expanduser().resolve()), settings) if allow_run_dirs else None
    if run is not None:
        model = str(Path(run.adapter).parent)  # absolute: the server finds it whatever its working directory
    else:  # it must be a served model
        resolve_target(db, settings, model)
    return repo.set_alias(db, name, model, who)


def deploy_recipe(path: Path, settings: ServeSettings) -> str:
    """Check a recipe file and freeze a copy in the data dir; returns the alias target ``recipe:<copy>``.

    Relative paths in the recipe are read from the working directory, as every tunesmith config's are.

    Raises:
        ConfigError: the file is missing, invalid, or names files, a run or a base model the server cannot use.
    """
    try:
        recipe = with_absolute_paths(load_recipe(path), Path.cwd())
    except ConfigError as exc:
        if not path.is_file():
            raise
        raise ConfigError(exc.message, RECIPE_HINT) from exc
    problems = recipe_file_problems(recipe)
    try:
        recipe_target(recipe.name, recipe, settings, None)
    except ModelError as exc:
        problems.append(f"{exc.message.removeprefix(f'recipe {recipe.name!r}: ')}: {exc.hint}")
    if problems:
        raise ConfigError(f"recipe {path} cannot be deployed:\n  " + "\n  ".join(problems), RECIPE_HINT)
    return RECIPE_PREFIX + str(freeze_recipe(recipe, settings.data_dir))


def check_deploy_gate(gate: GateSpec) -> list[str]:
    """Run the evaluation gate; returns its reasons when it passes.

    Raises:
        EvalError: the gate failed (its reasons listed).
    """
    kwargs = {
        k: v
        for k, v in (
            ("metric", gate.metric),
            ("min_gain", gate.min_gain),
            ("max_regression", gate.max_regression),
        )
        if v is not None
    }
    result = check_gate(gate.report, **kwargs)
    reasons = list(result.reasons)
    if not result.passed:
        raise EvalError(
            f"{gate.report}: the evaluation gate failed: " + "; ".join(reasons),
            "improve the model or adjust --min-gain/--max-regression; the alias was not changed",
        )
    return reasons


def open_store(data_dir: Path, database_url: str | None) -> tuple[Database, ServeSettings]:
    """The database a `tunesmith serve --data-dir DIR` uses, and default settings for name resolution."""
    settings = ServeSettings(data_dir=data_dir, database_url=database_url)
    if database_url is None and not (data_dir / "tunesmith.db").exists():
        raise ServeError(
            f"{data_dir} has no tunesmith.db",
            "pass the --data-dir your `tunesmith serve` uses",
            param="data_dir",
        )
    return Database(settings.resolved_database_url()), settings
