"""Build the example sentiment dataset from the human-rated sentences shipped with vaderSentiment 3.3.2.

Run from the repository root (needs the PyPI registry once, for the sdist; or pass ``--sdist``)::

    .venv/bin/python examples/sentiment/build.py

It downloads the vaderSentiment 3.3.2 source distribution (MIT licence), opens
``additional_resources/hutto_ICWSM_2014.tar.gz`` inside it, reads the ``*_GroundTruth.txt`` files (one
sentence per line with the mean of 20+ human ratings on a -4..+4 scale), labels each sentence by
thresholding the mean (positive >= 0.5, negative <= -0.5, else neutral), dedupes on normalised text across all
sources, and writes seeded OpenAI chat JSONL splits plus ``manifest.json``:

- ``train.jsonl`` / ``val.jsonl`` / ``test.jsonl``: movie-review and Amazon-review sentences;
- ``test-tweets.jsonl``: tweets, the domain-shift test split.

Label mix is "balanced-ish": each label's share is the mean of its natural share and 1/3, so the rare
neutral class is lifted but the data stays natural. Sentences that appear in the shared benchmark's training
file are kept out of val/test (and its eval file out of train) when those files are present.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import io
import json
import random
import re
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
SDIST = "vaderSentiment==3.3.2"
INNER_TARBALL = "additional_resources/hutto_ICWSM_2014.tar.gz"
SOURCES = {
    "movie": "movieReviewSnippets_GroundTruth.txt",
    "amazon": "amazonReviewSnippets_GroundTruth.txt",
    "tweets": "tweets_GroundTruth.txt",
}
# Verbatim from /work/shared/bench/data/sentiment-train.jsonl, so models trained here compare with the bench.
SYSTEM_PROMPT = (
    "Classify the sentiment of the review sentence. Reply with JSON only: "
    '{"sentiment": "positive" | "negative" | "neutral"}.'
)
BENCH_DIR = Path("/work/shared/bench/data")
LABELS = ("positive", "negative", "neutral")
MIN_CHARS, MAX_CHARS = 12, 300


def label_of(mean: float) -> str:
    """The label for a mean human rating on the -4..+4 scale."""
    return "positive" if mean >= 0.5 else "negative" if mean <= -0.5 else "neutral"


def normalise(text: str) -> str:
    """Lower-case, letters and digits only, single spaces: the key for deduplication and overlap checks."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


def fetch_sdist(dest: Path) -> Path:
    """Download the vaderSentiment sdist with pip into ``dest``; return the tarball path."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-binary",
            ":all:",
            "--no-deps",
            SDIST,
            "-d",
            str(dest),
        ],
        check=True,
    )
    return next(dest.glob("vaderSentiment-*.tar.gz"))


def read_ground_truth(sdist: Path) -> dict[str, list[dict]]:
    """Rows ``{id, mean, text, label}`` per source, read straight out of the nested tarballs."""
    with tarfile.open(sdist) as outer:
        member = next(m for m in outer.getmembers() if m.name.endswith(INNER_TARBALL))
        inner_bytes = outer.extractfile(member).read()
    out: dict[str, list[dict]] = {}
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        for source, name in SOURCES.items():
            member = next(m for m in inner.getmembers() if m.name.endswith(name))
            text = inner.extractfile(member).read().decode("utf-8", errors="replace")
            out[source] = [row for line in text.splitlines() if (row := _parse_line(line))]
    return out


def _parse_line(line: str) -> dict | None:
    parts = line.rstrip("\r\n").split("\t")
    if len(parts) < 3:
        return None
    text = " ".join(html.unescape(parts[2]).split())
    if not (MIN_CHARS <= len(text) <= MAX_CHARS) or "\ufffd" in text:
        return None
    mean = float(parts[1])
    return {"id": parts[0], "mean": round(mean, 4), "text": text, "label": label_of(mean)}


def dedupe(rows_by_source: dict[str, list[dict]]) -> tuple[dict[str, list[dict]], int]:
    """Keep the first of each normalised text across all sources; drop texts seen with conflicting labels."""
    labels: dict[str, set[str]] = {}
    for rows in rows_by_source.values():
        for r in rows:
            labels.setdefault(normalise(r["text"]), set()).add(r["label"])
    seen: set[str] = set()
    out, dropped = {}, 0
    for source, rows in rows_by_source.items():
        kept = []
        for r in rows:
            key = normalise(r["text"])
            if key in seen or len(labels[key]) > 1:
                dropped += 1
                continue
            seen.add(key)
            kept.append({**r, "source": source})
        out[source] = kept
    return out, dropped


def sample_balanced_ish(rows: list[dict], n: int, rng: random.Random) -> list[dict]:
    """``n`` rows whose label shares are the mean of the natural share and 1/3 (capped by availability)."""
    by_label = {lab: [r for r in rows if r["label"] == lab] for lab in LABELS}
    want = {lab: round(n * (len(by_label[lab]) / len(rows) + 1 / 3) / 2) for lab in LABELS}
    picked, rest = [], []
    for lab in LABELS:
        pool = by_label[lab][:]
        rng.shuffle(pool)
        picked += pool[: want[lab]]
        rest += pool[want[lab] :]
    rng.shuffle(rest)  # rounding can leave the total one short or long: top up or trim
    picked = (picked + rest)[:n]
    rng.shuffle(picked)
    return picked


def bench_texts(name: str) -> set[str]:
    """Normalised user texts of a shared benchmark file (empty when it is not on this machine)."""
    path = BENCH_DIR / name
    if not path.exists():
        return set()
    return {
        normalise(next(m["content"] for m in json.loads(line)["messages"] if m["role"] == "user"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    }


def to_example(row: dict) -> dict:
    """One OpenAI chat example with its provenance in ``metadata``."""
    return {
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": row["text"]},
            {"role": "assistant", "content": json.dumps({"sentiment": row["label"]})},
        ],
        "metadata": {"source": f"vader-{row['source']}", "id": row["id"], "mean_rating": row["mean"]},
    }


def build_splits(rows: dict[str, list[dict]], sizes: dict[str, int], seed: int) -> dict[str, list[dict]]:
    """Disjoint seeded splits: reviews -> test, val, train (in that order); tweets -> test-tweets."""
    rng = random.Random(seed)
    bench_train, bench_eval = bench_texts("sentiment-train.jsonl"), bench_texts("sentiment-eval.jsonl")
    reviews = rows["movie"] + rows["amazon"]
    eval_pool = [r for r in reviews if normalise(r["text"]) not in bench_train | bench_eval]
    test = sample_balanced_ish(eval_pool, sizes["test"], rng)
    used = {normalise(r["text"]) for r in test}
    val = sample_balanced_ish([r for r in eval_pool if normalise(r["text"]) not in used], sizes["val"], rng)
    used |= {normalise(r["text"]) for r in val}
    train_pool = [r for r in reviews if normalise(r["text"]) not in used | bench_eval]
    train = sample_balanced_ish(train_pool, sizes["train"], rng)
    tweets = sample_balanced_ish(rows["tweets"], sizes["test-tweets"], rng)
    return {"train": train, "val": val, "test": test, "test-tweets": tweets}


def overlap_report(splits: dict[str, list[dict]]) -> dict:
    """Pairwise overlap (normalised text) between splits and with the shared benchmark files."""
    keys = {name: {normalise(r["text"]) for r in rows} for name, rows in splits.items()}
    names = list(keys)
    between = {f"{a}|{b}": len(keys[a] & keys[b]) for i, a in enumerate(names) for b in names[i + 1 :]}
    bench = {f: bench_texts(f) for f in ("sentiment-train.jsonl", "sentiment-eval.jsonl")}
    with_bench = {f"{n}|bench/{f}": len(keys[n] & t) for n in names for f, t in bench.items() if t}
    return {"between_splits": between, "with_shared_bench": with_bench}


def write_outputs(out: Path, splits: dict[str, list[dict]], meta: dict) -> None:
    """Write each split as JSONL and the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        (out / f"{name}.jsonl").write_text(
            "".join(json.dumps(to_example(r), ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
        )
    (out / "manifest.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    """Parse arguments, fetch, read, dedupe, split and write."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sdist", type=Path, help="use this vaderSentiment-3.3.2.tar.gz instead of downloading")
    ap.add_argument("--out", type=Path, default=HERE, help="output folder (default: this script's folder)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sizes = {"train": 800, "val": 100, "test": 200, "test-tweets": 200}
    with tempfile.TemporaryDirectory() as tmp:
        sdist = args.sdist or fetch_sdist(Path(tmp))
        sha = hashlib.sha256(sdist.read_bytes()).hexdigest()
        rows, n_dup = dedupe(read_ground_truth(sdist))
    splits = build_splits(rows, sizes, args.seed)
    meta = {
        "source": {
            "package": SDIST,
            "file": sdist.name,
            "sha256": sha,
            "inner": INNER_TARBALL,
            "ground_truth_files": SOURCES,
            "licence": "MIT (C.J. Hutto), see LICENSE-vaderSentiment",
        },
        "seed": args.seed,
        "rule": "positive if mean >= 0.5, negative if mean <= -0.5, else neutral",
        "length_chars": [MIN_CHARS, MAX_CHARS],
        "duplicates_dropped": n_dup,
        "counts": {n: {"total": len(r), **Counter(x["label"] for x in r)} for n, r in splits.items()},
        "sources": {n: dict(Counter(x["source"] for x in r)) for n, r in splits.items()},
        "overlap": overlap_report(splits),
        "system_prompt": SYSTEM_PROMPT,
    }
    write_outputs(args.out, splits, meta)
    print(json.dumps(meta["counts"], indent=1), json.dumps(meta["overlap"], indent=1), sep="\n")


if __name__ == "__main__":
    main()
