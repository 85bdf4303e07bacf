"""Assistant-only loss masks computed from the tokenizer's own chat template."""

import pytest

from tunesmith.core.schema import ChatExample
from tunesmith.models.load import CHATML_TEMPLATE
from tunesmith.models.template import IGNORE_INDEX, prompt_ids, tokenize_example

LLAMA3_LIKE = (
    "{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n' "
    "+ m['content'] + eos_token }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
NO_END_MARKER = (
    "{% for m in messages %}{% if m['role'] == 'user' %}{{ 'Q: ' + m['content'] + '\n' }}{% elif m['role'] == "
    "'assistant' %}{{ 'A: ' + m['content'] + '\n' }}{% else %}{{ m['content'] + '\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'A: ' }}{% endif %}"
)

CONVO = ChatExample.model_validate(
    {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello there"},
            {"role": "user", "content": "Again?"},
            {"role": "assistant", "content": "Skipped", "weight": 0},
            {"role": "user", "content": "Last"},
            {"role": "assistant", "content": "Done"},
        ]
    }
)


def trained_text(tok, te):
    return tok.decode([i for i, label in zip(te.input_ids, te.labels, strict=True) if label != IGNORE_INDEX])


@pytest.mark.parametrize(
    "template",
    [None, CHATML_TEMPLATE, LLAMA3_LIKE, NO_END_MARKER],
    ids=["smollm2-own", "chatml", "llama3-like", "no-end-marker"],
)
def test_only_trained_assistant_turns_and_their_end_token_are_labelled(smol_tokenizer, template):
    tok = smol_tokenizer
    saved = tok.chat_template
    if template is not None:
        tok.chat_template = template
    try:
        te = tokenize_example(tok, CONVO)
        text = trained_text(tok, te)
        assert "Hello there" in text and "Done" in text
        assert "Skipped" not in text and "Be brief" not in text and "Hi" not in text and "Last" not in text
        assert text.count(tok.eos_token) == 2  # each trained turn ends with EOS / end-of-turn, so the model stops
        assert len(te.input_ids) == len(te.labels)
    finally:
        tok.chat_template = saved


def test_prompt_tokens_match_inference_tokenization(smol_tokenizer):
    ex = ChatExample.model_validate(
        {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}
    )
    te = tokenize_example(smol_tokenizer, ex)
    prompt = prompt_ids(smol_tokenizer, ex.for_template()[:-1])
    assert te.input_ids[: len(prompt)] == prompt
    assert all(label == IGNORE_INDEX for label in te.labels[: len(prompt)])
    assert te.labels[len(prompt)] != IGNORE_INDEX


def test_truncation_keeps_ids_and_labels_aligned(smol_tokenizer):
    te = tokenize_example(smol_tokenizer, CONVO, max_length=10)
    assert len(te.input_ids) == len(te.labels) == 10
    assert te.n_trained == 0
