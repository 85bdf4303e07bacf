"""Format loaders: detection, line numbers, fuzzing with random bytes/JSON, and lossless round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunesmith.core.errors import TunesmithError
from tunesmith.data.convert import convert_file
from tunesmith.data.formats import LoadOptions, detect_format, parse_columns
from tunesmith.data.load import iter_records, load_examples

FMTS = ["openai", "alpaca", "sharegpt", "csv", "logs"]
FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda c: (
        st.lists(c, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "messages",
                    "role",
                    "content",
                    "instruction",
                    "output",
                    "conversations",
                    "from",
                    "value",
                    "input",
                    "x",
                ]
            ),
            c,
            max_size=4,
        )
    ),
    max_leaves=12,
)


def _drain(path, fmt):
    try:
        records = list(iter_records(path, fmt=fmt, options=LoadOptions(logs_split="turn")))
    except TunesmithError:
        return
    for r in records:
        assert r.line >= 1
        assert (r.example is None) == bool(r.error)


@pytest.mark.parametrize("fmt", FMTS)
@FUZZ
@given(data=st.binary(max_size=200))
def test_random_bytes_never_crash(tmp_path, fmt, data):
    path = tmp_path / ("f.csv" if fmt == "csv" else "f.jsonl")
    path.write_bytes(data)
    _drain(path, fmt)


@pytest.mark.parametrize("fmt", FMTS)
@FUZZ
@given(rows=st.lists(JSON, min_size=1, max_size=4), as_array=st.booleans())
def test_random_json_never_crashes(tmp_path, fmt, rows, as_array):
    path = tmp_path / "f.json"
    text = json.dumps(rows) if as_array else "\n".join(json.dumps(r) for r in rows)
    path.write_text(text, encoding="utf-8")
    _drain(path, fmt)


def test_detects_each_format(tmp_path):
    files = {
        "a.jsonl": '{"instruction": "q", "input": "", "output": "a"}\n',
        "s.jsonl": '{"conversations": [{"from": "human", "value": "q"}]}\n',
        "o.jsonl": '{"messages": []}\n',
        "l.jsonl": '[{"role": "user", "content": "q"}]\n',
        "c.csv": "question,answer\nq,a\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert [detect_format(tmp_path / n) for n in files] == ["alpaca", "sharegpt", "openai", "logs", "csv"]


def test_alpaca_json_array_keeps_line_numbers(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('[\n {"instruction": "a", "output": "b"},\n\n {"instruction": "c",\n  "output": 4}\n]\n')
    recs = list(iter_records(path))
    assert [(r.line, r.code) for r in recs] == [(2, None), (4, "non_string_content")]


def test_csv_column_mapping_and_metadata(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_text('q\tans\tsys\tlabel\nhi\t"two\nlines"\tbe kind\tpos\nyo\tok\t\tneg\n', encoding="utf-8")
    opts = LoadOptions(columns=parse_columns("user=q,assistant=ans,system=sys"))
    recs = list(iter_records(path, options=opts))
    assert [r.line for r in recs] == [2, 4]
    first = recs[0].example
    assert [m.role for m in first.messages] == ["system", "user", "assistant"]
    assert first.messages[2].content == "two\nlines" and first.metadata == {"label": "pos"}
    assert [m.role for m in recs[1].example.messages] == ["user", "assistant"]


def test_csv_errors_name_the_column(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(TunesmithError, match="cannot tell which columns"):
        list(iter_records(path))
    with pytest.raises(TunesmithError, match=r"column\(s\) \['zz'\] not in the header"):
        list(iter_records(path, options=LoadOptions(columns={"user": "a", "assistant": "zz"})))
    with pytest.raises(TunesmithError, match="is not ROLE=COLUMN"):
        parse_columns("user")


def test_logs_split_per_turn_trains_each_turn_once(tmp_path):
    path = tmp_path / "logs.jsonl"
    conv = {
        "session": "s1",
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"},
            {"role": "assistant", "content": "d"},
        ],
    }
    path.write_text(json.dumps(conv) + "\n", encoding="utf-8")
    whole = load_examples(path, fmt="logs")
    turns = load_examples(path, fmt="logs", options=LoadOptions(logs_split="turn"))
    assert len(whole) == 1 and len(turns) == 2
    assert [m.content for m in turns[1].messages] == ["a", "b", "c", "d"]
    assert [m.trained for m in turns[1].messages] == [False, False, False, True]
    assert turns[0].metadata == {"session": "s1"}


def test_load_examples_dispatches_and_raises_with_lines(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"instruction": "q", "output": "a"}\n{"instruction": 3}\n', encoding="utf-8")
    with pytest.raises(TunesmithError, match=r"line 2 field output: missing 'output'"):
        load_examples(path)
    with pytest.raises(TunesmithError, match="no such file"):
        load_examples(tmp_path / "missing.jsonl")


SINGLE = [
    {
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "q1"},
            {"role": "assistant", "content": "a1"},
        ]
    },
    {"messages": [{"role": "user", "content": "q2"}, {"role": "assistant", "content": "a2"}]},
]
MULTI = [
    {
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "a"},
            {"role": "user", "content": "q2"},
            {"role": "assistant", "content": "a2"},
        ]
    }
]


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("via", ["alpaca", "sharegpt"])
def test_openai_round_trips_through_each_format(tmp_path, via):
    src = _write(tmp_path / "src.jsonl", SINGLE + (MULTI if via == "sharegpt" else []))
    mid = convert_file(src, via, tmp_path / f"mid.{via}.jsonl")
    back = convert_file(mid.out, "openai", tmp_path / "back.jsonl")
    assert mid.skipped == 0 and back.written == len(load_examples(src))
    assert [e.to_openai() for e in load_examples(back.out)] == [e.to_openai() for e in load_examples(src)]


def test_alpaca_to_sharegpt_and_back_is_lossless(tmp_path):
    rows = [
        {"instruction": "Translate", "input": "bonjour", "output": "hello", "system": "be brief"},
        {"instruction": "Say hi", "input": "", "output": "hi"},
    ]
    src = _write(tmp_path / "a.jsonl", rows)
    mid = convert_file(src, "openai", tmp_path / "o.jsonl")
    back = convert_file(mid.out, "alpaca", tmp_path / "a2.jsonl")
    got = [json.loads(line) for line in Path(back.out).read_text("utf-8").splitlines()]
    assert got == [rows[0], {"instruction": "Say hi", "input": "", "output": "hi"}]
    sg = convert_file(src, "sharegpt", tmp_path / "s.jsonl")
    assert sg.written == 2 and detect_format(sg.out) == "sharegpt"


def test_inexpressible_records_are_skipped_and_reported(tmp_path):
    weighted = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": 0}]}
    src = _write(tmp_path / "src.jsonl", SINGLE + MULTI + [weighted])
    r = convert_file(src, "alpaca", tmp_path / "out.jsonl")
    assert (r.written, r.skipped) == (2, 2)
    rejected = [json.loads(line) for line in Path(r.rejects).read_text("utf-8").splitlines()]
    assert [x["line"] for x in rejected] == [3, 4] and "multi-turn" in rejected[0]["reason"]
    s = convert_file(src, "sharegpt", tmp_path / "out2.jsonl")
    assert (s.written, s.skipped) == (3, 1) and "weights" in next(iter(s.reasons))
    with pytest.raises(TunesmithError, match="cannot write this format"):
        convert_file(src, "csv")
