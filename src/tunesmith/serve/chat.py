"""Chat completion handling, without HTTP: resolve the model, apply its recipe, render and check the prompt,
settle the sampling settings, and build the ``chat.completion`` object (``/v1/chat/completions`` and the
``/v1/batches`` lines both go through here)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from tunesmith import __version__
from tunesmith.core.errors import ServeError
from tunesmith.models.generate import StepLogprob
from tunesmith.models.template import render_chat
from tunesmith.serve.batcher import GenRequest, completions_usage
from tunesmith.serve.chat_schemas import (
    ChatCompletion,
    ChatCompletionCreate,
    ChatMessageOut,
    Choice,
    ChoiceLogprobs,
    TokenLogprob,
    TopLogprob,
    Usage,
)
from tunesmith.serve.deps import ServerContext
from tunesmith.serve.inference import Completion, Sampling, Target
from tunesmith.serve.names import resolve_target
from tunesmith.serve.recipes import apply_recipe
from tunesmith.serve.tools import active_tools, parse_tool_calls

DEFAULT_MAX_TOKENS = 256


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
