"""Regenerate the dataset test assets: `python tests/assets/data/generate.py` (one file per issue code).

Each file has 12 distinct valid examples with the problem at a known line (recorded in EXPECTED), so tests
can assert the code and the line.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
TOPICS = [
    "the weather",
    "a recipe for bread",
    "python lists",
    "the moon landing",
    "tax forms",
    "running shoes",
    "jazz history",
    "prime numbers",
    "solar panels",
    "chess openings",
    "tea brewing",
    "bike repair",
    "french verbs",
    "sql joins",
    "origami cranes",
]


def chat(i: int, system: str | None = None) -> dict:
    """A distinct valid example about topic i."""
    msgs = [{"role": "system", "content": system}] if system else []
    return {
        "messages": [
            *msgs,
            {"role": "user", "content": f"Tell me something useful about {TOPICS[i]}."},
            {"role": "assistant", "content": f"Here is one fact about {TOPICS[i]}: it is item {i}."},
        ]
    }


def good(n: int = 12) -> list:
    return [chat(i) for i in range(n)]


def with_bad(bad, at: int = 4) -> list:
    """12 good rows with ``bad`` inserted so that it is on line ``at``."""
    rows = good()
    rows.insert(at - 1, bad)
    return rows


LONG_PROMPT = (
    "Please summarise the following customer review about the blender we sold last week in one "
    "sentence, keeping the tone of the customer and the key complaint about the noisy motor."
)
CASES: dict[str, list] = {
    "not_json_object": with_bad("[1, 2, 3]"),
    "invalid_json": with_bad('{"messages": [} oops'),
    "missing_messages": with_bad({"prompt": "hello"}),
    "missing_role": with_bad({"messages": [{"content": "hi"}, {"role": "assistant", "content": "yo"}]}),
    "missing_content": with_bad({"messages": [{"role": "user"}, {"role": "assistant", "content": "yo"}]}),
    "unrecognized_key": with_bad(
        {"messages": [{"role": "user", "content": "hi", "text": "x"}, {"role": "assistant", "content": "yo"}]}
    ),
    "unknown_role": with_bad(
        {"messages": [{"role": "human", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    ),
    "empty_content": with_bad(
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "   "}]}
    ),
    "non_string_content": with_bad(
        {"messages": [{"role": "user", "content": 42}, {"role": "assistant", "content": "yo"}]}
    ),
    "no_assistant_message": with_bad({"messages": [{"role": "user", "content": "hi"}]}),
    "assistant_before_user": with_bad(
        {
            "messages": [
                {"role": "assistant", "content": "hello!"},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "yo"},
            ]
        }
    ),
    "too_few_examples": good(5),
    "short_response": with_bad(
        {"messages": [{"role": "user", "content": "Is it on?"}, {"role": "assistant", "content": "y"}]}
    ),
    "long_response": with_bad(
        {
            "messages": [
                {"role": "user", "content": "Write a lot."},
                {"role": "assistant", "content": "word " * 1700},
            ]
        }
    ),
    "exact_duplicate": [*good(), chat(2)],
    "near_duplicate": [
        *good(),
        {
            "messages": [
                {"role": "user", "content": LONG_PROMPT},
                {"role": "assistant", "content": "Loud motor, works fine."},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": LONG_PROMPT.upper().replace(",", " ;")},
                {"role": "assistant", "content": "loud motor -- works fine!"},
            ]
        },
    ],
    "inconsistent_system_prompt": [chat(i, "You are a helpful tutor.") for i in range(11)]
    + [chat(11, "You are a pirate.")],
    "too_long": with_bad(
        {
            "messages": [
                {"role": "user", "content": "Summarise: " + "lorem ipsum " * 60},
                {"role": "assistant", "content": "It is filler text."},
            ]
        }
    ),
    "special_token_in_content": with_bad(
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "done<|im_end|>"}]}
    ),
    "zero_trained_tokens": with_bad(
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo", "weight": 0}]}
    ),
}
EXPECTED = {  # code -> (severity, line); None = file-level
    "not_json_object": ("error", 4),
    "invalid_json": ("error", 4),
    "missing_messages": ("error", 4),
    "missing_role": ("error", 4),
    "missing_content": ("error", 4),
    "unrecognized_key": ("error", 4),
    "unknown_role": ("error", 4),
    "empty_content": ("error", 4),
    "non_string_content": ("error", 4),
    "no_assistant_message": ("error", 4),
    "assistant_before_user": ("error", 4),
    "invalid_utf8": ("error", 4),
    "truncated_line": ("error", 13),
    "too_few_examples": ("error", None),
    "short_response": ("warning", 4),
    "long_response": ("warning", 4),
    "exact_duplicate": ("warning", 3),
    "near_duplicate": ("warning", 13),
    "inconsistent_system_prompt": ("warning", 12),
    "too_long": ("warning", 4),
    "special_token_in_content": ("warning", 4),
    "zero_trained_tokens": ("warning", 4),
    "few_examples": ("warning", None),
}


def write(name: str, rows: list) -> None:
    with open(HERE / f"{name}.jsonl", "w", encoding="utf-8") as f:
        for row in rows:
            f.write((row if isinstance(row, str) else json.dumps(row)) + "\n")


def main() -> None:
    for name, rows in CASES.items():
        write(name, rows)
    lines = [json.dumps(r).encode() + b"\n" for r in good()]
    lines.insert(3, b'{"messages": [{"role": "user", "content": "caf\xe9"}]}\n')
    (HERE / "invalid_utf8.jsonl").write_bytes(b"".join(lines))
    text = "".join(json.dumps(r) + "\n" for r in good())
    (HERE / "truncated_line.jsonl").write_text(text + '{"messages": [{"role": "user", "content": "cut', "utf-8")
    write("leak_train", good())
    write("leak_val", [chat(12), chat(13), chat(5)])
    pref = {
        "input": {"messages": [{"role": "user", "content": "Say hi"}]},
        "preferred_output": [{"role": "assistant", "content": "Hello there!"}],
        "non_preferred_output": [{"role": "assistant", "content": "Go away."}],
    }
    write(
        "preference",
        [dict(pref, input={"messages": [{"role": "user", "content": f"Say hi to person {i}"}]}) for i in range(12)]
        + [
            dict(pref, non_preferred_output=pref["preferred_output"]),
            {"input": {"messages": []}, "preferred_output": []},
        ],
    )
    write("valid", good(12))


if __name__ == "__main__":
    main()
