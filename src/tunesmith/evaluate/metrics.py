"""Quality metrics on (prediction, reference) strings: pure functions, no model, no I/O.

Per-example scores are floats in [0, 1] (``length_ratio`` excepted); corpus metrics are their means, except
``macro_f1`` (computed over the whole set of labels) and the confusion matrix.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Literal

from tunesmith.core.replies import parse_json

TaskType = Literal["json", "label", "text"]

# Metric names a user may list under `metrics:` (plus `auto`). Model-dependent ones are computed in run.py.
PER_EXAMPLE = (
    "exact_match",
    "token_f1",
    "word_overlap",
    "length_ratio",
    "rouge_l",
    "json_valid",
    "field_accuracy",
    "accuracy",
)
CORPUS_ONLY = ("macro_f1",)
MODEL_METRICS = ("semantic_similarity", "nll", "perplexity")
ALL_METRICS = PER_EXAMPLE + CORPUS_ONLY + MODEL_METRICS
# Metrics where lower is better or where neither direction is "better" (the gate skips the latter).
LOWER_IS_BETTER = frozenset({"nll", "perplexity"})
NO_DIRECTION = frozenset({"length_ratio"})
AUTO_METRICS: dict[str, tuple[str, ...]] = {
    "label": ("accuracy", "macro_f1", "exact_match"),
    "json": ("json_valid", "field_accuracy", "exact_match"),
    "text": ("token_f1", "rouge_l", "word_overlap", "length_ratio", "exact_match"),
}
PRIMARY: dict[str, str] = {"label": "accuracy", "json": "field_accuracy", "text": "rouge_l"}
MAX_LABELS = 20

_WORD = re.compile(r"\w+", re.UNICODE)


def normalize(text: str) -> str:
    """Lower-case, collapse whitespace, strip."""
    return " ".join(text.lower().split())


def words(text: str) -> list[str]:
    """Lower-cased word tokens (``\\w+``)."""
    return _WORD.findall(text.lower())


def exact_match(pred: str, ref: str) -> float:
    """1.0 when the normalized strings are equal."""
    return float(normalize(pred) == normalize(ref))


def token_f1(pred: str, ref: str) -> float:
    """SQuAD-style bag-of-words F1 between prediction and reference."""
    p, r = words(pred), words(ref)
    if not p and not r:
        return 1.0
    common = sum((Counter(p) & Counter(r)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


def word_overlap(pred: str, ref: str) -> float:
    """Fraction of the reference's distinct words that appear in the prediction."""
    r = set(words(ref))
    return 1.0 if not r else len(r & set(words(pred))) / len(r)


def length_ratio(pred: str, ref: str) -> float:
    """Prediction length over reference length, in words (1.0 = same length)."""
    r = len(words(ref))
    return float(len(words(pred))) if r == 0 else len(words(pred)) / r


def _lcs(a: list[str], b: list[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(pred: str, ref: str) -> float:
    """ROUGE-L F-measure (longest common word subsequence)."""
    p, r = words(pred), words(ref)
    if not p and not r:
        return 1.0
    lcs = _lcs(p, r)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(p), lcs / len(r)
    return 2 * precision * recall / (precision + recall)


def json_valid(pred: str) -> float:
    """1.0 when the prediction contains a JSON object."""
    return float(isinstance(parse_json(pred), dict))


def field_accuracy(pred: str, ref: str) -> float:
    """Fraction of the reference JSON's top-level fields the prediction reproduces exactly.

    String values are compared after :func:`normalize`. A non-JSON reference falls back to exact match.
    """
    want = parse_json(ref)
    if not isinstance(want, dict):
        return exact_match(pred, ref)
    got = parse_json(pred)
    if not isinstance(got, dict):
        return 0.0
    if not want:
        return float(not got)
    return sum(_same(got.get(k), v) for k, v in want.items()) / len(want)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return normalize(a) == normalize(b)
    return a == b


def extract_label(text: str) -> str:
    """The label of an answer: the first string value of a JSON object answer, else the stripped text.

    ``{"sentiment": "Positive"}`` -> ``positive``; ``Negative.`` -> ``negative``.
    """
    obj = parse_json(text)
    if isinstance(obj, dict):
        for value in obj.values():
            if isinstance(value, str):
                return normalize(value)
    return normalize(text).strip(" .!\"'")


def accuracy(pred: str, ref: str) -> float:
    """Label accuracy of one example: 1.0 when the extracted labels agree."""
    return float(extract_label(pred) == extract_label(ref))


SCORERS = {
    "exact_match": exact_match,
    "token_f1": token_f1,
    "word_overlap": word_overlap,
    "length_ratio": length_ratio,
    "rouge_l": rouge_l,
    "json_valid": lambda p, r: json_valid(p),
    "field_accuracy": field_accuracy,
    "accuracy": accuracy,
}


def score_example(pred: str, ref: str, metrics: list[str]) -> dict[str, float]:
    """Every per-example metric in ``metrics`` for one prediction."""
    return {m: SCORERS[m](pred, ref) for m in metrics if m in SCORERS}


def macro_f1(preds: list[str], refs: list[str]) -> float:
    """Macro-averaged F1 over the reference labels (predictions outside them count as wrong)."""
    labels = sorted(set(refs))
    if not labels:
        return 0.0
    scores = []
    for lab in labels:
        tp = sum(p == lab and r == lab for p, r in zip(preds, refs, strict=True))
        fp = sum(p == lab and r != lab for p, r in zip(preds, refs, strict=True))
        fn = sum(p != lab and r == lab for p, r in zip(preds, refs, strict=True))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores)


def confusion_matrix(preds: list[str], refs: list[str]) -> dict[str, Any]:
    """``{"labels", "columns", "matrix"}`` (rows: reference, cols: prediction; unknown -> ``(other)``)."""
    labels = sorted(set(refs))
    cols = labels + (["(other)"] if any(p not in labels for p in preds) else [])
    index = {lab: i for i, lab in enumerate(cols)}
    matrix = [[0] * len(cols) for _ in labels]
    for p, r in zip(preds, refs, strict=True):
        matrix[labels.index(r)][index.get(p, len(cols) - 1)] += 1
    return {"labels": labels, "columns": cols, "matrix": matrix}


def detect_task(references: list[str]) -> TaskType:
    """Guess the task type from the references: JSON objects, short labels, or free text.

    JSON objects with one string field and few distinct values (``{"sentiment": "positive"}``) are labels.
    """
    objs = [parse_json(r) for r in references]
    few = len({extract_label(r) for r in references}) <= min(MAX_LABELS, max(2, len(references) // 2))
    if references and all(isinstance(o, dict) for o in objs):
        single = all(len(o) == 1 and isinstance(next(iter(o.values())), str) for o in objs)
        return "label" if single and few else "json"
    if references and few and all(len(words(r)) <= 3 for r in references):
        return "label"
    return "text"


def choose_metrics(task: TaskType, references: list[str], requested: list[str] | None = None) -> list[str]:
    """The metrics to compute: the user's list, or the task type's defaults."""
    if requested:
        return list(dict.fromkeys(requested))
    out = list(AUTO_METRICS[task])
    if task == "label" and all(isinstance(parse_json(r), dict) for r in references):
        out.append("json_valid")
    return out


def is_pass(metric: str, value: float) -> bool:
    """Whether one example passes on ``metric`` (binary metrics: 1.0; graded: >= 0.5)."""
    return value >= 0.5
