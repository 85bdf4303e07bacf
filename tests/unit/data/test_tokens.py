"""TokenCounter's shared renders and Rust-side trained counts equal the per-example computation."""

from __future__ import annotations

import copy
import random

import pytest

from tests.unit.data.conftest import DATA
from tunesmith.core.schema import ChatExample, PreferenceExample
from tunesmith.data.load import iter_records
from tunesmith.data.tokens import _TEMPLATE_ERRORS, TokenCounter, _trained_from_offsets, as_chat
from tunesmith.models.template import trained_char_spans

PIECES = ["hello", "  spaced  ", "\n\nnew", "東京", "émoji 😀", "<|im_end|>", "a\tb", "x" * 40, "<think>r</think>"]


def _reference(tok, example) -> tuple[int, int] | None:
    """The count as before: one full render per example, offsets from the tokenizer call."""
    try:
        text, spans = trained_char_spans(tok, as_chat(example))
    except _TEMPLATE_ERRORS:
        return None
    offsets = tok(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    return len(offsets), _trained_from_offsets(offsets, spans)


def _random_examples(n: int) -> list[ChatExample]:
    rng = random.Random(1)
    out = []
    for _ in range(n):
        messages = []
        if rng.random() < 0.3:
            messages.append({"role": "system", "content": "".join(rng.choices(PIECES, k=3))})
        for _turn in range(rng.randint(1, 3)):
            messages.append({"role": "user", "content": "".join(rng.choices(PIECES, k=rng.randint(1, 4)))})
            answer = {"role": "assistant", "content": "".join(rng.choices(PIECES, k=rng.randint(1, 4)))}
            if rng.random() < 0.2:
                answer["weight"] = 0
            messages.append(answer)
        out.append(ChatExample.model_validate({"messages": messages}))
    return out


def _asset_examples() -> list[ChatExample | PreferenceExample]:
    return [
        rec.example
        for path in sorted(DATA.glob("*.jsonl"))
        for rec in iter_records(path, kind="auto")
        if rec.example is not None
    ]


def _assert_counts_match(tok, examples) -> TokenCounter:
    counter = TokenCounter("smollm2-135m-instruct", tok)
    counts = counter.count(examples)
    for ex, count in zip(examples, counts, strict=True):
        got = None if count is None else (count.n_tokens, count.n_trained)
        assert got == _reference(tok, ex), ex
    return counter


def test_counts_equal_the_per_example_render_on_assets_and_random_conversations(smol_tokenizer):
    counter = _assert_counts_match(smol_tokenizer, _asset_examples() + _random_examples(150))
    assert any(s is not None for s in counter._skeletons.values())  # the shared render was used
    assert counter._segments is not None  # and the per-piece counts


def test_a_template_that_trims_contents_is_rendered_per_example(smol_tokenizer):
    tok = copy.deepcopy(smol_tokenizer)
    tok.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] | trim }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    counter = _assert_counts_match(tok, _random_examples(60))
    assert counter._skeletons and all(s is None for s in counter._skeletons.values())


@pytest.mark.parametrize("weight", [None, 0])
def test_one_shape_with_different_contents(smol_tokenizer, weight):
    examples = [
        ChatExample.model_validate(
            {
                "messages": [
                    {"role": "user", "content": f"question {i} " * i},
                    {"role": "assistant", "content": f" answer {i}\n", "weight": weight},
                ]
            }
        )
        for i in range(1, 20)
    ]
    counter = _assert_counts_match(smol_tokenizer, examples)
    assert len(counter._skeletons) == 1


def test_counts_stay_exact_when_the_piece_cache_is_cleared(smol_tokenizer, monkeypatch):
    monkeypatch.setattr("tunesmith.data.tokens.MAX_PIECES", 3)
    counter = TokenCounter("smollm2-135m-instruct", smol_tokenizer)
    examples = _random_examples(40)
    expected = [_reference(smol_tokenizer, ex) for ex in examples]
    for start in range(0, 40, 8):  # several batches: the cache fills and is cleared between them
        counts = counter.count(examples[start : start + 8])
        assert [(c.n_tokens, c.n_trained) if c else None for c in counts] == expected[start : start + 8]
