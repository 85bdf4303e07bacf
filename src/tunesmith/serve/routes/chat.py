"""/v1/chat/completions: base models, fine-tuned models, checkpoints and aliases; streamed or not.

Each request is checked against the model's context before it queues (a prompt over the context is a 400,
never a stuck inference thread), and a client that disconnects frees its slot at the next decode step.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from tunesmith.models.generate import StepLogprob
from tunesmith.serve.batcher import GenRequest, completions_usage
from tunesmith.serve.chat import (
    Prepared,
    build_completion,
    choice_of,
    completion_id,
    logprobs_of,
    prepare,
    system_fingerprint,
)
from tunesmith.serve.chat_schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionCreate,
    ChunkChoice,
    Delta,
    DeltaToolCall,
    Usage,
)
from tunesmith.serve.deps import ServerContext, get_ctx
from tunesmith.serve.inference import Completion, cut_at_stop

router = APIRouter(tags=["chat"])
DISCONNECT_POLL_S = 0.25


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE chunks with stream"}},
)
async def create_chat_completion(
    body: ChatCompletionCreate, request: Request, ctx: ServerContext = Depends(get_ctx)
) -> Any:
    """Generate a chat completion; ``stream=true`` answers with server-sent ``chat.completion.chunk``s."""
    prep = await prepare(ctx, body)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(stream_chunks(ctx, prep, include_usage), media_type="text/event-stream")
    req = GenRequest(prep.target, prep.prompt, prep.params)
    completions = await wait_unless_disconnected(request, ctx, req)
    if completions is None:
        return Response(status_code=499)  # nobody is listening any more
    return build_completion(prep, completions)


async def wait_unless_disconnected(request: Request, ctx: ServerContext, req: GenRequest) -> list[Completion] | None:
    """Queue ``req`` and wait for it; None, with its generation stopped, if the client disconnects first."""
    future = asyncio.wrap_future(ctx.batcher.submit(req))
    try:
        while True:
            done, _ = await asyncio.wait({future}, timeout=DISCONNECT_POLL_S)
            if done:
                return future.result()
            if await request.is_disconnected():
                req.cancel.set()
                return None
    except asyncio.CancelledError:  # the server is cancelling this request's task (client gone)
        req.cancel.set()
        raise


# ---------------------------------------------------------------- streaming


class QueueStreamer:
    """A transformers streamer handing ``(row, token id, logprob step)`` to an asyncio queue.

    Runs on the model thread; handles every row of the batch (``n`` > 1 samples several rows) and stops
    forwarding a row after its end-of-turn token.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue) -> None:
        self.loop, self.queue = loop, queue
        self.skip_prompt = True
        self.ended: set[int] = set()
        # Set by inference.generate on the model thread: the model's end-of-turn ids, and the LogprobRecorder
        # when log probabilities are asked for.
        self.end_ids: set[int] = set()
        self.recorder: Any = None

    def put(self, value: Any) -> None:
        """Receive new token ids (the first call carries the prompt)."""
        if self.skip_prompt:
            self.skip_prompt = False
            return
        steps = self.recorder.resolve(value) if self.recorder is not None else None
        for row, token in enumerate(value.reshape(-1).tolist()):
            if row in self.ended:
                continue
            if token in self.end_ids:
                self.ended.add(row)
                continue
            step = steps[row] if steps is not None else None
            self.loop.call_soon_threadsafe(self.queue.put_nowait, (row, token, step))

    def end(self) -> None:
        """Generation finished."""


@dataclass
class ChoiceStream:
    """What one streamed choice has generated and sent so far."""

    ids: list[int] = field(default_factory=list)
    text: str = ""
    sent: int = 0  # characters of text already sent
    steps: list[StepLogprob] = field(default_factory=list)
    steps_sent: int = 0


async def stream_chunks(ctx: ServerContext, prep: Prepared, include_usage: bool) -> AsyncIterator[str]:
    """SSE lines: a role chunk per choice, content deltas (cut at stop sequences), finish chunks, ``[DONE]``.

    With tools the content is held back and sent whole at the end, as content or as ``tool_calls``.
    """
    loop, queue = asyncio.get_running_loop(), asyncio.Queue()
    streamer = QueueStreamer(loop, queue)
    req = GenRequest(prep.target, prep.prompt, prep.params, streamer=streamer)
    future = asyncio.wrap_future(ctx.batcher.submit(req))
    cid, created, fp = completion_id(), int(time.time()), system_fingerprint(prep.target)
    n, params = prep.params.n, prep.params
    rows_per_choice = n if params.temperature > 0 else 1  # greedy: one row, repeated to every choice
    states = [ChoiceStream() for _ in range(n)]
    hold = max((len(s) for s in params.stop), default=1) - 1

    def chunk(choices: list[ChunkChoice], usage: Any = None) -> str:
        body = ChatCompletionChunk(
            id=cid, created=created, model=prep.target.name, choices=choices, usage=usage, system_fingerprint=fp
        )
        return f"data: {json.dumps(body.model_dump(exclude_none=False))}\n\n"

    def content_chunk(i: int, upto: int) -> str:
        state = states[i]
        text, state.sent = state.text[state.sent : upto], upto
        new_steps, state.steps_sent = state.steps[state.steps_sent :], len(state.steps)
        lp = logprobs_of(prep.tok, new_steps) if params.logprobs is not None else None
        return chunk([ChunkChoice(index=i, delta=Delta(content=text), logprobs=lp)])

    try:
        for i in range(n):
            yield chunk([ChunkChoice(index=i, delta=Delta(role="assistant", content=""))])
        while not (future.done() and queue.empty()):
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, future}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                continue
            row, token, step = getter.result()
            for i in range(n) if rows_per_choice == 1 else [row]:
                state = states[i]
                state.ids.append(token)
                if step is not None:
                    state.steps.append(step)
                decoded = prep.tok.decode(state.ids, skip_special_tokens=True)
                if decoded.endswith("\ufffd") or prep.tools:  # incomplete character, or tools: send at the end
                    continue
                state.text = decoded
                cut = cut_at_stop(decoded, params.stop)
                safe = len(cut) if cut is not None else max(len(decoded) - hold, state.sent)
                if safe > state.sent:
                    yield content_chunk(i, safe)
        completions = await future  # re-raises a generation error
        for i, completion in enumerate(completions):
            for line in final_chunks(i, completion, states[i], prep, chunk, content_chunk):
                yield line
        if include_usage:
            yield chunk([], usage=Usage(**completions_usage(len(prep.prompt), completions)))
        yield "data: [DONE]\n\n"
    finally:  # the client went away (the response task is cancelled) or the stream ended
        req.cancel.set()


def final_chunks(
    i: int, completion: Completion, state: ChoiceStream, prep: Prepared, chunk: Any, content_chunk: Any
) -> list[str]:
    """The rest of a choice's content (or its tool calls) and its finish chunk."""
    out = []
    if prep.tools:
        choice = choice_of(i, completion, prep)
        calls = [DeltaToolCall(index=k, **c.model_dump()) for k, c in enumerate(choice.message.tool_calls or [])]
        delta = Delta(content=choice.message.content, tool_calls=calls or None)
        out.append(chunk([ChunkChoice(index=i, delta=delta, logprobs=choice.logprobs)]))
        return [*out, chunk([ChunkChoice(index=i, delta=Delta(), finish_reason=choice.finish_reason)])]
    state.text = completion.text
    if completion.logprobs is not None:
        state.steps = completion.logprobs  # the kept tokens: those after a stop sequence are dropped
    if len(completion.text) > state.sent or len(state.steps) > state.steps_sent:
        out.append(content_chunk(i, len(completion.text)))
    return [*out, chunk([ChunkChoice(index=i, delta=Delta(), finish_reason=completion.finish_reason)])]
