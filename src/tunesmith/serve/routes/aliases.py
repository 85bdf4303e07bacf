"""/v1/aliases: stable names pointing at a model, checkpoint or recipe, with recorded history and rollback."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from tunesmith.core.errors import TunesmithError
from tunesmith.serve.deploy import deploy_alias
from tunesmith.serve.deps import ServerContext, actor, get_ctx
from tunesmith.serve.recipes import RecipeBook, recipe_path, summarize
from tunesmith.serve.schemas import AliasChangePublic, AliasCreate, AliasPublic, RecipeSummary
from tunesmith.store import repo
from tunesmith.store.repo import NotFoundError

router = APIRouter(tags=["aliases"])


def alias_public(db: Any, name: str, recipes: RecipeBook) -> AliasPublic:
    """An alias with its history (and, for a recipe alias, what the recipe applies)."""
    row = repo.get_alias(db, name)
    if row is None:
        raise NotFoundError(f"no alias named {name!r}", "create it with POST /v1/aliases", param="name")
    history = [
        AliasChangePublic(
            action=c.action,
            from_target=c.from_target,
            to_target=c.to_target,
            actor=c.actor,
            created_at=c.created_at,
        )
        for c in repo.alias_history(db, name)
    ]
    return AliasPublic(
        name=row.name,
        model=row.target,
        updated_at=row.updated_at,
        history=history,
        recipe=recipe_of(row.target, recipes),
    )


def recipe_of(target: str, recipes: RecipeBook) -> RecipeSummary | None:
    """The summary of the recipe ``target`` names; None for other targets or an unreadable recipe (a listing
    still shows the alias; a request naming it gets the error)."""
    path = recipe_path(target)
    if path is None:
        return None
    try:
        return summarize(recipes.get(path).recipe)
    except TunesmithError:
        return None


@router.post("/aliases", response_model=AliasPublic)
def create_alias(body: AliasCreate, request: Request, ctx: ServerContext = Depends(get_ctx)) -> AliasPublic:
    """Deploy: point an alias at a model or checkpoint (the change is recorded); recipes deploy from the CLI."""
    deploy_alias(ctx.db, ctx.settings, body.name, body.model, actor(request))
    return alias_public(ctx.db, body.name, ctx.recipes)


@router.get("/aliases/{name}", response_model=AliasPublic)
def read_alias(name: str, ctx: ServerContext = Depends(get_ctx)) -> AliasPublic:
    """An alias, its target and its history."""
    return alias_public(ctx.db, name, ctx.recipes)


@router.post("/aliases/{name}/rollback", response_model=AliasPublic)
def rollback_alias(name: str, request: Request, ctx: ServerContext = Depends(get_ctx)) -> AliasPublic:
    """Point the alias back at its previous target."""
    repo.rollback_alias(ctx.db, name, actor(request))
    return alias_public(ctx.db, name, ctx.recipes)
