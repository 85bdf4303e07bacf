"""/v1/chat/completions: base models, fine-tuned models, checkpoints and aliases; streamed or not."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from tunesmith.errors import ServeError
from tunesmith.serve.batcher import GenRequest, completions_usage
from tunesmith.serve.chat_schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionCreate,
    ChatMessageOut,
    Choice,
    ChunkChoice,
    Delta,
    Usage,
)
from tunesmith.serve.deps import ServerContext, get_ctx
from tunesmith.serve.inference import Sampling, Target, cut_at_stop
from tunesmith.serve.names import resolve_target

router = APIRouter(tags=["chat"])
DEFAULT_MAX_TOKENS = 256


def completion_id() -> str:
    """``chatcmpl-<hex>``."""
    return f"chatcmpl-{secrets.token_hex(12)}"


def sampling_of(body: ChatCompletionCreate) -> Sampling:
    """The request's sampling settings (OpenAI defaults: temperature 1, top_p 1)."""
    return Sampling(
        max_tokens=body.token_limit(DEFAULT_MAX_TOKENS),
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        stop=tuple(body.stop_list()),
        n=body.n,
        seed=body.seed,
    )


async def prepare(ctx: ServerContext, body: ChatCompletionCreate) -> tuple[Target, list[int]]:
    """Resolve the model and tokenize the prompt with the model's own chat template."""
    target = await asyncio.to_thread(resolve_target, ctx.db, ctx.settings, body.model)
    messages = [m.as_template_dict() for m in body.messages]

    def tokenize() -> list[int]:
        from tunesmith.models.template import prompt_ids

        return prompt_ids(ctx.batcher.host.tokenizer(target.base), messages)

    prompt = await asyncio.to_thread(tokenize)
    return target, prompt


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE chunks with stream"}},
)
async def create_chat_completion(body: ChatCompletionCreate, ctx: ServerContext = Depends(get_ctx)) -> Any:
    """Generate a chat completion; ``stream=true`` answers with server-sent ``chat.completion.chunk``s."""
    if body.stream and body.n > 1:
        raise ServeError("stream=true supports n=1 only", "drop n or stream=false", param="n")
    target, prompt = await prepare(ctx, body)
    params = sampling_of(body)
    if body.stream:
        include_usage = bool((body.stream_options or {}).get("include_usage"))
        return StreamingResponse(
            stream_chunks(ctx, target, prompt, params, include_usage), media_type="text/event-stream"
        )
    future = ctx.batcher.submit(GenRequest(target, prompt, params))
    completions = await asyncio.wrap_future(future)
    choices = [
        Choice(index=i, message=ChatMessageOut(content=c.text), finish_reason=c.finish_reason)
        for i, c in enumerate(completions)
    ]
    return ChatCompletion(
        id=completion_id(),
        created=int(time.time()),
        model=target.name,
        choices=choices,
        usage=Usage(**completions_usage(len(prompt), completions)),
    )


class QueueStreamer:
    """A transformers streamer handing text deltas to an asyncio queue (runs on the model thread)."""

    def __init__(
        self, tok: Any, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue, prompt_len: int
    ) -> None:
        self.tok, self.loop, self.queue = tok, loop, queue
        self.ids: list[int] = []
        self.sent = ""
        self.skip_prompt = True
        self.prompt_len = prompt_len

    def put(self, value: Any) -> None:
        """Receive new token ids (the first call carries the prompt)."""
        if self.skip_prompt:
            self.skip_prompt = False
            return
        self.ids.extend(value.reshape(-1).tolist())
        text = self.tok.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):  # a multi-byte character is still incomplete
            return
        delta, self.sent = text[len(self.sent) :], text
        if delta:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, delta)

    def end(self) -> None:
        """Generation finished."""


async def stream_chunks(
    ctx: ServerContext, target: Target, prompt: list[int], params: Sampling, include_usage: bool
) -> AsyncIterator[str]:
    """SSE lines: a role chunk, content deltas (cut at stop sequences), a finish chunk, ``[DONE]``."""
    loop, queue = asyncio.get_running_loop(), asyncio.Queue()
    tok = await asyncio.to_thread(ctx.batcher.host.tokenizer, target.base)
    streamer = QueueStreamer(tok, loop, queue, len(prompt))
    future = asyncio.wrap_future(ctx.batcher.submit(GenRequest(target, prompt, params, streamer=streamer)))
    cid, created = completion_id(), int(time.time())

    def chunk(delta: Delta, finish: str | None = None, usage: Any = None) -> str:
        body = ChatCompletionChunk(
            id=cid,
            created=created,
            model=target.name,
            usage=usage,
            choices=[ChunkChoice(index=0, delta=delta, finish_reason=finish)] if delta else [],
        )
        return f"data: {json.dumps(body.model_dump(exclude_none=False))}\n\n"

    yield chunk(Delta(role="assistant", content=""))
    text, sent, hold = "", 0, max((len(s) for s in params.stop), default=1) - 1
    while not (future.done() and queue.empty()):
        getter = asyncio.ensure_future(queue.get())
        done, _ = await asyncio.wait({getter, future}, return_when=asyncio.FIRST_COMPLETED)
        if getter not in done:
            getter.cancel()
            continue
        text += getter.result()
        cut = cut_at_stop(text, params.stop)
        safe = len(cut) if cut is not None else max(len(text) - hold, sent)
        if safe > sent:
            yield chunk(Delta(content=text[sent:safe]))
            sent = safe
    [completion] = await future  # re-raises a generation error
    if completion.text[sent:]:
        yield chunk(Delta(content=completion.text[sent:]))
    yield chunk(Delta(), completion.finish_reason)
    if include_usage:
        yield chunk(None, usage=Usage(**completions_usage(len(prompt), [completion])))
    yield "data: [DONE]\n\n"
