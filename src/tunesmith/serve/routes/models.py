"""/v1/models: base models, fine-tuned models and aliases; DELETE removes a fine-tuned model."""

from __future__ import annotations

import asyncio
import shutil

from fastapi import APIRouter, Depends

from tunesmith.core.errors import ModelError
from tunesmith.serve.deps import ServerContext, get_ctx
from tunesmith.serve.names import adapter_dir, canonical_base
from tunesmith.serve.schemas import Deleted, ModelList, ModelPublic
from tunesmith.store import repo

router = APIRouter(tags=["models"])


def all_models(ctx: ServerContext) -> list[ModelPublic]:
    """Base models, succeeded fine-tuned models (not deleted) and aliases."""
    started = repo.now()
    out = [ModelPublic(id=b, created=started, owned_by="tunesmith") for b in ctx.settings.base_models]
    for job in repo.list_jobs(ctx.db, limit=10000, statuses=("succeeded",)):
        if job.fine_tuned_model and not job.model_deleted:
            out.append(ModelPublic(id=job.fine_tuned_model, created=job.finished_at or job.created_at, owned_by="user"))
    out += [
        ModelPublic(id=a.name, created=a.updated_at, owned_by=f"alias:{a.target}") for a in repo.list_aliases(ctx.db)
    ]
    return out


@router.get("/models", response_model=ModelList)
def list_models(ctx: ServerContext = Depends(get_ctx)) -> ModelList:
    """Every model usable in chat completions."""
    return ModelList(data=all_models(ctx))


@router.get("/models/{model:path}", response_model=ModelPublic)
def read_model(model: str, ctx: ServerContext = Depends(get_ctx)) -> ModelPublic:
    """One model."""
    for m in all_models(ctx):
        if m.id == model:
            return m
    ckpt = repo.find_checkpoint(ctx.db, model)
    if ckpt is not None:
        return ModelPublic(id=model, created=ckpt.created_at, owned_by="user")
    raise ModelError(f"the model {model!r} does not exist", "list models with GET /v1/models", param="model")


@router.delete("/models/{model:path}", response_model=Deleted)
async def delete_model(model: str, ctx: ServerContext = Depends(get_ctx)) -> Deleted:
    """Delete a fine-tuned model: unload its adapter, remove its files; base models cannot be deleted."""
    if canonical_base(model, ctx.settings) is not None:
        raise ModelError(
            f"{model!r} is a base model and cannot be deleted", "delete fine-tuned models only", param="model"
        )
    job = await asyncio.to_thread(repo.find_job_by_model, ctx.db, model)
    if job is None or job.model_deleted:
        raise ModelError(
            f"the fine-tuned model {model!r} does not exist", "list models with GET /v1/models", param="model"
        )
    paths = [str(adapter_dir(job.work_dir))] + [c.path for c in repo.list_checkpoints(ctx.db, job.id)]
    # Order: 1) the database says deleted (new requests for the model or its checkpoints now get 404),
    # 2) unload the adapters from the inference thread, 3) remove the files.
    await asyncio.to_thread(mark_model_deleted, ctx, job.id, model)

    def unload(host) -> None:
        for path in paths:
            host.unload(path)

    await asyncio.wrap_future(ctx.batcher.call(unload))
    await asyncio.to_thread(shutil.rmtree, adapter_dir(job.work_dir).parent, True)
    return Deleted(id=model, object="model", deleted=True)


def mark_model_deleted(ctx: ServerContext, job_id: str, model: str) -> None:
    """Mark the job's model deleted and drop its checkpoint rows, before any file goes."""
    repo.update_job(ctx.db, job_id, f"Model {model} deleted", model_deleted=True)
    repo.delete_checkpoints(ctx.db, job_id)
