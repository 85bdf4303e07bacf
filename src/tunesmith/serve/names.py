"""Resolve the ``model`` a client names: alias -> checkpoint / fine-tuned model / base model -> Target."""

from __future__ import annotations

from pathlib import Path

from tunesmith.core.errors import ModelError
from tunesmith.evaluate.recipe import Recipe
from tunesmith.models.bundled import BUNDLED_ALIASES, BUNDLED_NAME
from tunesmith.serve.inference import Target
from tunesmith.serve.mapping import job_id_from_model
from tunesmith.serve.recipes import RecipeBook, read_deployed, recipe_path
from tunesmith.serve.settings import ServeSettings
from tunesmith.store import repo
from tunesmith.store.db import Database


def canonical_base(name: str, settings: ServeSettings) -> str | None:
    """The configured base model ``name`` refers to (bundled aliases included), or None."""
    if name in settings.base_models:
        return name
    if name in BUNDLED_ALIASES and any(b in BUNDLED_ALIASES for b in settings.base_models):
        return BUNDLED_NAME
    return None


def adapter_dir(work_dir: str) -> Path:
    """Where a job's final adapter lives."""
    return Path(work_dir) / "output" / "adapter"


def resolve_target(db: Database, settings: ServeSettings, name: str, recipes: RecipeBook | None = None) -> Target:
    """The Target for ``name``, following aliases.

    A name never becomes a path: only the target an alias ends at (a run directory or a ``recipe:`` file the
    CLI deployed; the HTTP endpoint cannot store paths) is read as a path. ``recipes``: the server's loaded
    recipes (None: read the recipe file).

    Raises:
        ModelError: unknown name, a job that has not succeeded, or a deleted model (404, param ``model``).
        AliasError: the aliases from ``name`` loop or chain too long (400).
    """
    requested, chain = name, repo.follow_alias(db, name)
    name, hops = chain[-1], len(chain) - 1
    base = canonical_base(name, settings)
    if base is not None:
        return Target(requested, base)
    recipe_file = recipe_path(name) if hops else None
    if recipe_file is not None:
        recipe = recipes.get(recipe_file).recipe if recipes is not None else read_deployed(recipe_file)
        return recipe_target(requested, recipe, settings, recipe_file)
    ckpt = repo.find_checkpoint(db, name)
    if ckpt is not None:
        job = repo.get_job(db, ckpt.job_id)
        if job.model_deleted or not Path(ckpt.path).is_dir():
            raise ModelError(f"checkpoint {name!r} was deleted", "list checkpoints of its job", param="model")
        return Target(requested, job.model, ckpt.path)
    if hops and Path(name).is_absolute():  # a run directory an operator deployed with `tunesmith deploy`
        run = run_dir_target(requested, name, settings)
        if run is not None:
            return run
    job = repo.find_job_by_model(db, name) if job_id_from_model(name) else None
    if job is not None and not job.model_deleted and job.status == "succeeded":
        return Target(requested, job.model, str(adapter_dir(job.work_dir)))
    raise ModelError(
        f"the model {requested!r} does not exist" + (f" (alias -> {name!r})" if hops else ""),
        "list models with GET /v1/models; fine-tuned models exist once their job succeeded",
        param="model",
    )


def run_dir_target(requested: str, name: str, settings: ServeSettings) -> Target | None:
    """A local `tunesmith train` run directory (its ``adapter/`` on its base model), or None if ``name`` is not one.

    Only for paths an operator gave the CLI (``deploy_alias(allow_run_dirs=True)``) or stored by it.

    Raises:
        ModelError: the run's base model is not one this server offers.
    """
    import json

    run = Path(name).expanduser()
    if not (run / "adapter" / "adapter_config.json").exists() or not (run / "run.json").exists():
        return None
    try:
        base_name = json.loads((run / "run.json").read_text(encoding="utf-8")).get("model", "")
    except (OSError, ValueError, AttributeError) as exc:
        raise ModelError(f"{run}/run.json is unreadable: {exc}", "re-run or re-export the training run") from exc
    base = canonical_base(base_name, settings)
    if base is None:
        raise ModelError(
            f"run {run} was trained on {base_name!r}, which this server does not offer",
            f"start the server with --model {base_name}",
            param="model",
        )
    return Target(requested, base, str((run / "adapter").resolve()))


def recipe_target(requested: str, recipe: Recipe, settings: ServeSettings, recipe_file: str | None) -> Target:
    """The Target a recipe answers with: its run's adapter on the run's base, or its base model.

    Raises:
        ModelError: the run is not a `tunesmith train` run directory, or the base is not one this server offers.
    """
    if recipe.run is not None:
        run = run_dir_target(requested, str(recipe.run), settings)
        if run is None:
            raise ModelError(
                f"recipe {recipe.name!r}: `run: {recipe.run}` is not a `tunesmith train` run directory "
                "(it needs adapter/adapter_config.json and run.json)",
                "train it (`tunesmith train`) or set `run:` in the recipe to an existing run directory",
                param="model",
            )
        return Target(requested, run.base, run.adapter, recipe_file)
    base = canonical_base(recipe.model, settings)
    if base is None:
        raise ModelError(
            f"recipe {recipe.name!r}: `model: {recipe.model}` is not a model this server offers",
            f"start the server with --model {recipe.model}",
            param="model",
        )
    return Target(requested, base, None, recipe_file)
