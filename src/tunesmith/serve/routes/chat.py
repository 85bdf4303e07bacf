"""/v1/chat/completions: base models, fine-tuned models, checkpoints and aliases; streamed or not.

Each request is checked against the model's context before it queues (a prompt over the context is a 400,
never a stuck inference thread), and a client that disconnects frees its slot at the next decode step.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from tunesmith import __version__
from tunesmith.core.errors import ServeError
from tunesmith.models.generate import StepLogprob
from tunesmith.serve.batcher import GenRequest, completions_usage
from tunesmith.serve.chat_schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionCreate,
    ChatMessageOut,
    Choice,
    ChoiceLogprobs,
    ChunkChoice,
    Delta,
    DeltaToolCall,
    TokenLogprob,
    TopLogprob,
    Usage,
)
from tunesmith.serve.deps import ServerContext, get_ctx
from tunesmith.serve.inference import Completion, Sampling, Target, cut_at_stop
from tunesmith.serve.names import resolve_target
from tunesmith.serve.recipes import apply_recipe
from tunesmith.serve.tools import active_tools, parse_tool_calls

router = APIRouter(tags=["chat"])
DEFAULT_MAX_TOKENS = 256
DISCONNECT_POLL_S = 0.25


class ContextLengthError(ServeError):
    """Prompt plus completion budget exceed the model's context."""

    code = "context_length_exceeded"


@dataclass
class Prepared:
    """A request ready to queue: what to run, its prompt, and how to sample."""

    target: Target
    prompt: list[int]
    params: Sampling
    tools: list[dict[str, Any]] | None = None
    prompt_text: str = ""
    tok: Any = None


def completion_id() -> str:
    """``chatcmpl-<hex>``."""
    return f"chatcmpl-{secrets.token_hex(12)}"


def system_fingerprint(target: Target) -> str:
    """``fp_<hash>`` of what produces the answer: tunesmith's version, the base model, the adapter and the recipe."""
    key = f"{__version__}|{target.base}|{target.adapter or ''}" + (f"|{target.recipe}" if target.recipe else "")
    return "fp_" + hashlib.sha256(key.encode()).hexdigest()[:12]


def token_budget(body: ChatCompletionCreate, prompt_len: int, context: int) -> int:
    """The completion budget: the one asked for, else the default capped by what the context leaves.

    Raises:
        ContextLengthError: the prompt alone, or the prompt plus the asked-for tokens, exceed the context.
    """
    asked = body.requested_tokens()
    if prompt_len >= context or (asked is not None and prompt_len + asked > context):
        raise ContextLengthError(
            f"this model's maximum context length is {context} tokens; the request has {prompt_len} prompt "
            f"tokens" + (f" and asks for {asked} completion tokens" if asked is not None else ""),
            "shorten the messages or lower max_completion_tokens / max_tokens",
            param="messages" if prompt_len >= context else "max_completion_tokens",
        )
    return asked if asked is not None else min(DEFAULT_MAX_TOKENS, context - prompt_len)


def logit_bias(body: ChatCompletionCreate, tok: Any) -> tuple[tuple[int, float], ...]:
    """The request's ``logit_bias`` pairs, checked against the tokenizer's vocabulary.

    Raises:
        ServeError: a token id the model does not have (param ``logit_bias``).
    """
    try:
        return body.token_biases(len(tok))
    except ValueError as exc:
        raise ServeError(str(exc), "use token ids of this model's tokenizer", param="logit_bias") from exc


async def prepare(ctx: ServerContext, body: ChatCompletionCreate) -> Prepared:
    """Resolve the model, apply its recipe (an alias of a deployed recipe), render the prompt with the model's own
    chat template (tools included), check it against the context and settle the sampling settings."""
    target = await asyncio.to_thread(resolve_target, ctx.db, ctx.settings, body.model, ctx.recipes)
    messages = [m.as_template_dict() for m in body.messages]
    if target.recipe is not None:  # its prompt, and its response_format / max_tokens unless the request sets them
        body, messages = await asyncio.to_thread(apply_recipe, ctx.recipes.get(target.recipe), body, messages)
    host = ctx.batcher.host

    def tokenize() -> Prepared:
        from tunesmith.models.template import render_chat

        tok = host.tokenizer(target.base)
        tools = active_tools(body, tok, body.model)
        text = render_chat(tok, messages, add_generation_prompt=True, tools=tools)
        prompt = tok(text, add_special_tokens=False)["input_ids"]
        params = Sampling(
            max_tokens=token_budget(body, len(prompt), host.context_length(target.base)),
            temperature=1.0 if body.temperature is None else body.temperature,
            top_p=1.0 if body.top_p is None else body.top_p,
            stop=tuple(body.stop_list()),
            n=body.n,
            seed=body.seed,
            logprobs=(body.top_logprobs or 0) if body.logprobs else None,
            presence_penalty=body.presence_penalty or 0.0,
            frequency_penalty=body.frequency_penalty or 0.0,
            logit_bias=logit_bias(body, tok),
            grammar=body.grammar(),
        )
        return Prepared(target, prompt, params, tools, text, tok)

    try:
        return await asyncio.to_thread(tokenize)
    except Exception as exc:  # a template that cannot render these messages (e.g. roles out of order)
        if isinstance(exc, ServeError):
            raise
        from jinja2 import TemplateError

        if isinstance(exc, TemplateError):
            raise ServeError(
                f"the chat template of {body.model!r} cannot render these messages: {exc}",
                "check the order of roles (system first, user and assistant alternating)",
                param="messages",
            ) from exc
        raise


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


async def complete(ctx: ServerContext, body: ChatCompletionCreate) -> ChatCompletion:
    """One non-streamed chat completion with no client connection to watch (``/v1/batches`` lines)."""
    prep = await prepare(ctx, body)
    future = ctx.batcher.submit(GenRequest(prep.target, prep.prompt, prep.params))
    return build_completion(prep, await asyncio.wrap_future(future))


def build_completion(prep: Prepared, completions: list[Completion]) -> ChatCompletion:
    """The ``chat.completion`` object for a request's generated choices."""
    return ChatCompletion(
        id=completion_id(),
        created=int(time.time()),
        model=prep.target.name,
        choices=[choice_of(i, c, prep) for i, c in enumerate(completions)],
        usage=Usage(**completions_usage(len(prep.prompt), completions)),
        system_fingerprint=system_fingerprint(prep.target),
    )


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


def choice_of(index: int, completion: Completion, prep: Prepared) -> Choice:
    """One ``choices[]`` entry: content or parsed tool calls, finish reason and log probabilities."""
    content, calls = completion.text, []
    if prep.tools:
        content, calls = parse_tool_calls(completion.text, prep.tok, prep.prompt_text, prep.tools)
    return Choice(
        index=index,
        message=ChatMessageOut(content=content, tool_calls=calls or None),
        finish_reason="tool_calls" if calls else completion.finish_reason,
        logprobs=logprobs_of(prep.tok, completion.logprobs) if completion.logprobs is not None else None,
    )


def token_entry(tok: Any, token_id: int, logprob: float) -> dict[str, Any]:
    """A token's text, log probability and UTF-8 bytes, as OpenAI's logprob entries carry them."""
    text = tok.decode([token_id])
    return {"token": text, "logprob": logprob, "bytes": list(text.encode("utf-8"))}


def logprobs_of(tok: Any, steps: list[StepLogprob]) -> ChoiceLogprobs:
    """OpenAI's ``logprobs.content`` for generated tokens."""
    return ChoiceLogprobs(
        content=[
            TokenLogprob(
                **token_entry(tok, s.token_id, s.logprob),
                top_logprobs=[TopLogprob(**token_entry(tok, t, lp)) for t, lp in s.top],
            )
            for s in steps
        ]
    )


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
