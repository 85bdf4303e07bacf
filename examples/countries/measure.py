"""Measure that the countries task behaves as intended with the bundled model (SmolLM2-135M-Instruct).

Run from the repository root (CPU is fine: ~100 short greedy generations per condition)::

    .venv/bin/python examples/countries/measure.py --n 90

It asks the first ``--n`` test questions two ways and prints exact-match accuracy per condition and field:

- ``closed_book``: the question alone (the model must already know the fact; it should not);
- ``rag_bm25``: the gold document plus the 2 best-scoring *other* documents (BM25 over docs.jsonl), in a
  seeded order, in the user message with the RAG template below (the distractors share words with the
  question, so copying the right value is not free);
- ``rag_random``: the gold document plus 2 random other documents.

Results go to ``measured.json`` next to this script (with the CPU and torch version).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import re
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
RAG_TEMPLATE = "Answer the question using the context below.\n\nContext:\n{context}\n\nQuestion: {question}"


def read_jsonl(path: Path) -> list[dict]:
    """Every JSON line of ``path``."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def terms(text: str) -> list[str]:
    """Lower-cased word tokens for BM25."""
    return re.findall(r"\w+", text.lower())


def bm25_ranking(docs: list[dict], query: str, k1: float = 1.5, b: float = 0.75) -> list[str]:
    """Document ids, best BM25 score first (title + text), ties broken by id."""
    bags = [Counter(terms(d["title"] + " " + d["text"])) for d in docs]
    avg_len = sum(sum(bag.values()) for bag in bags) / len(bags)
    df = Counter(t for bag in bags for t in bag)
    scores = {}
    for doc, bag in zip(docs, bags, strict=True):
        length, score = sum(bag.values()), 0.0
        for t in set(terms(query)):
            if tf := bag.get(t, 0):
                idf = math.log(1 + (len(docs) - df[t] + 0.5) / (df[t] + 0.5))
                score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avg_len))
        scores[doc["id"]] = score
    return sorted(scores, key=lambda i: (-scores[i], i))


def rag_messages(example: dict, context_ids: list[str], by_id: dict[str, dict]) -> list[dict]:
    """The example's system prompt and a user turn holding the context blocks and the question."""
    system, user = example["messages"][0], example["messages"][1]
    context = "\n\n".join(f"[{i}] {by_id[i]['text']}" for i in context_ids)
    return [system, {"role": "user", "content": RAG_TEMPLATE.format(context=context, question=user["content"])}]


def build_conditions(test: list[dict], docs: list[dict], seed: int) -> dict[str, list[list[dict]]]:
    """Prompts per condition, in test order."""
    rng = random.Random(seed)
    by_id = {d["id"]: d for d in docs}
    out: dict[str, list[list[dict]]] = {"closed_book": [], "rag_bm25": [], "rag_random": []}
    for ex in test:
        gold, question = ex["metadata"]["source"], ex["messages"][1]["content"]
        out["closed_book"].append(ex["messages"][:2])
        hard = [i for i in bm25_ranking(docs, question) if i != gold][:2]
        easy = rng.sample([d["id"] for d in docs if d["id"] != gold], 2)
        for name, others in (("rag_bm25", hard), ("rag_random", easy)):
            ids = [gold, *others]
            rng.shuffle(ids)
            out[name].append(rag_messages(ex, ids, by_id))
    return out


def score(test: list[dict], outputs: list[str]) -> dict:
    """Exact match (tunesmith's normalisation) overall and per asked field, and how often the output's last
    number is the right value (the fact was found even where the sentence came out different or cut off)."""
    from tunesmith.evaluate.metrics import exact_match

    hits: dict[str, list[tuple[float, float]]] = {}
    for ex, out in zip(test, outputs, strict=True):
        numbers = re.findall(r"\d+", out)
        pair = (exact_match(out, ex["messages"][-1]["content"]), float(numbers[-1:] == [ex["metadata"]["value"]]))
        hits.setdefault("all", []).append(pair)
        hits.setdefault(ex["metadata"]["field"], []).append(pair)
    return {
        k: {
            "n": len(v),
            "exact_match": round(sum(em for em, _ in v) / len(v), 4),
            "last_number_match": round(sum(num for _, num in v) / len(v), 4),
        }
        for k, v in hits.items()
    }


def cpu_name() -> str:
    """The CPU model (``lscpu``'s "Model name"), for the record next to the timings."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main() -> None:
    """Load the model, generate greedily for each condition, score, write measured.json."""
    import torch

    from tunesmith.evaluate.generate import LocalGenerator
    from tunesmith.models.load import load_model_and_tokenizer

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=90, help="test questions to ask (the first n of test.jsonl)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--conditions", default="closed_book,rag_bm25,rag_random")
    ap.add_argument("--out", type=Path, default=HERE / "measured.json")
    args = ap.parse_args()
    torch.set_num_threads(1)  # a shared 2-core machine
    test = read_jsonl(HERE / "test.jsonl")[: args.n]
    prompts = build_conditions(test, read_jsonl(HERE / "docs.jsonl"), args.seed)
    model, tok = load_model_and_tokenizer("smollm2-135m-instruct")
    generate = LocalGenerator(model, tok, max_new_tokens=16)  # the brief's budget; long names get cut (README)
    results: dict = {}
    for name in args.conditions.split(","):
        start, outputs = time.perf_counter(), []
        for i in range(0, len(test), args.batch):
            outputs += [row["output"] for row in generate(prompts[name][i : i + args.batch])]
        results[name] = {
            **score(test, outputs),
            "seconds": round(time.perf_counter() - start, 1),
            "outputs": outputs,
        }
        print(name, json.dumps({k: v for k, v in results[name].items() if k != "outputs"}), flush=True)
    meta = {"cpu": cpu_name(), "torch": torch.__version__, "n": len(test), "max_new_tokens": 16, "seed": args.seed}
    args.out.write_text(json.dumps({**meta, "results": results}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
