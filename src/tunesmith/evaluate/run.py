"""`run_evaluation(cfg) -> EvalReport`: answer the test set with every candidate, score, compare, report.

Reads top to bottom: load data -> check candidates -> choose metrics -> per candidate (prompts, cached
generation, scores, cost, regression suite) -> comparisons and judge -> verdict -> report.json + report.html.
"""

from __future__ import annotations

import gc
import hashlib
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tunesmith.core.atomic import sha256_file, write_json_atomic, write_text_atomic
from tunesmith.core.config import save_config
from tunesmith.core.errors import ConfigError, EvalError, ModelError
from tunesmith.core.jsonl import read_jsonl
from tunesmith.core.pricing import PriceTable, load_price_table
from tunesmith.evaluate import metrics as M
from tunesmith.evaluate import score as S
from tunesmith.evaluate.candidates import recipe_for, resolve_schema
from tunesmith.evaluate.config import CandidateSpec, EvalConfig
from tunesmith.evaluate.embeddings import semantic_similarity
from tunesmith.evaluate.generate import (
    EndpointGenerator,
    GenerationCache,
    LocalGenerator,
    generate_cached,
    reference_nll,
)
from tunesmith.evaluate.infer_schema import is_json_answer, unwrap_answer
from tunesmith.evaluate.items import TestItem, load_items
from tunesmith.evaluate.judge_run import run_judge
from tunesmith.evaluate.recipe import Recipe, RecipePrompter
from tunesmith.evaluate.regression import RegressionSuite, check_case, load_suite
from tunesmith.evaluate.report.html import render_html
from tunesmith.evaluate.retrieval import hit_rate
from tunesmith.evaluate.schema import CandidateResult, EvalReport, RegressionResult
from tunesmith.models.load import inference_dtype
from tunesmith.models.ranked import DECODING as RANKED_DECODING
from tunesmith.models.runs import load_for_inference, resolve_run, weights_fingerprint
from tunesmith.models.structured import grammar_for


def run_evaluation(cfg: EvalConfig) -> EvalReport:
    """Evaluate every candidate on the test set and write ``report.json`` and ``report.html``.

    Args:
        cfg: the validated evaluation config.

    Returns:
        The report (also written to ``cfg.output_dir``).

    Raises:
        DatasetError: the test or training file is invalid.
        ConfigError / EvalError: a candidate cannot be used (all problems are listed before any model loads).
    """
    items = load_items(cfg.test_file, cfg.limit)
    train = load_items(cfg.train_file) if cfg.train_file else None
    suite = load_suite(cfg.regression_suite) if cfg.regression_suite else None
    check_candidates(cfg, train)
    refs = [it.reference for it in items]
    task = M.detect_task(refs)
    metrics = M.choose_metrics(task, refs, None if cfg.metrics == "auto" else cfg.metrics)
    primary = pick_primary(task, metrics)
    table = load_price_table(cfg.prices)
    cfg.output_dir.mkdir(parents=True, exist_ok=True)
    results = [evaluate_candidate(cfg, spec, items, train, suite, metrics, primary, table) for spec in cfg.candidates]
    comparisons = [
        c
        for c in (
            S.compare(r, [b for b in results if b.kind != "run"], primary, cfg.bootstrap_samples, cfg.seed)
            for r in results
            if r.kind == "run"
        )
        if c
    ]
    if cfg.judge is not None:
        run_judge(cfg, items, results, comparisons)
    first = comparisons[0] if comparisons else None
    queries = S.break_even(_named(results, first.finetuned), _named(results, first.baseline), table) if first else None
    report = EvalReport(
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        test_file=str(cfg.test_file),
        n_examples=len(items),
        task_type=task,
        primary_metric=primary,
        metrics=metrics,
        references=refs,
        questions=[it.question for it in items],
        candidates=results,
        comparisons=comparisons,
        verdict=S.verdict(results, first, primary, queries),
        break_even_queries=queries,
        config=cfg.model_dump(mode="json"),
    )
    save_report(report, cfg)
    return report


def check_candidates(cfg: EvalConfig, train: list[TestItem] | None = None) -> None:
    """Find every unusable candidate before any model is loaded; raise one error listing them all."""
    problems: list[str] = []
    for i, spec in enumerate(cfg.candidates):
        where = f"candidates[{i}] ({spec.label})"
        try:
            resolve_schema(spec, train)
        except EvalError as exc:
            problems.append(f"{where}: {exc.message}")
        if spec.rag is not None and not spec.rag.docs.exists():
            problems.append(f"{where}: rag.docs {spec.rag.docs} does not exist")
        if spec.kind == "run":
            try:
                resolve_run(spec.path)
            except ModelError as exc:
                problems.append(f"{where}: {exc.message}")
        if spec.kind == "endpoint" and not os.environ.get(spec.api_key_env):
            problems.append(f"{where}: environment variable {spec.api_key_env} (api_key_env) is not set")
        if spec.kind == "system" and spec.prompt_file and not spec.prompt_file.exists():
            problems.append(f"{where}: prompt_file {spec.prompt_file} does not exist")
    if cfg.judge and not os.environ.get(cfg.judge.api_key_env):
        problems.append(f"judge: environment variable {cfg.judge.api_key_env} (judge.api_key_env) is not set")
    if problems:
        raise ConfigError(
            f"{len(problems)} candidate problem(s):\n  " + "\n  ".join(problems),
            "fix the candidates listed above (docs/evaluation.md describes each kind)",
        )


def pick_primary(task: str, metrics: list[str]) -> str:
    """The metric comparisons and the gate default to: the task's natural one if computed, else the first."""
    preferred = M.PRIMARY[task]
    if preferred in metrics:
        return preferred
    usable = [m for m in metrics if m not in M.NO_DIRECTION and m not in M.LOWER_IS_BETTER and m != "macro_f1"]
    if not usable:
        raise ConfigError(
            f"metrics {metrics}: none can rank candidates",
            "add a quality metric such as accuracy, token_f1 or rouge_l",
        )
    return usable[0]


def candidate_hash(cfg: EvalConfig, spec: CandidateSpec) -> str:
    """Cache key of a candidate: its spec, the generation settings and the data it was prompted from."""
    parts = [
        spec.model_dump_json(),
        str(cfg.max_new_tokens),
        str(cfg.temperature),
        str(cfg.seed),
        sha256_file(cfg.test_file),
    ]
    if (spec.kind == "few-shot" or spec.json_schema == "infer") and cfg.train_file:
        parts.append(sha256_file(cfg.train_file))
    if spec.json_schema is not None:  # every constrained candidate (the structured kind always has one)
        parts.append(RANKED_DECODING)  # constrained answers decoded before ranking are not reused
    if spec.json_schema not in (None, "infer") and Path(spec.json_schema).is_file():
        parts.append(sha256_file(Path(spec.json_schema)))
    if spec.rag is not None:
        parts.append(path_fingerprint(spec.rag.docs))
    if spec.kind == "system" and spec.prompt_file and Path(spec.prompt_file).exists():
        parts.append(sha256_file(spec.prompt_file))
    if spec.kind == "run" and spec.path:
        parts.append(weights_fingerprint(Path(spec.path)))
    if spec.kind != "endpoint" and (dtype := inference_dtype(cfg.dtype, cfg.device)) != "float32":
        parts.append(dtype)  # other weights, other answers; fp32 keys stay as they were before dtype existed
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def path_fingerprint(path: Path) -> str:
    """A file's sha256, or a folder's files' names, sizes and mtimes: edited documents change the key."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else []
    return ";".join(f"{f.relative_to(path)}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)


def cache_path(cfg: EvalConfig, spec: CandidateSpec, suffix: str = "") -> Path:
    """``output_dir/cache/<label>-<hash><suffix>.jsonl``."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", spec.label)[:40]
    return cfg.output_dir / "cache" / f"{slug}-{candidate_hash(cfg, spec)}{suffix}.jsonl"


class _Backend:
    """The candidate's model, loaded lazily (only if something is not cached) and freed after."""

    def __init__(self, cfg: EvalConfig, spec: CandidateSpec, recipe: Recipe) -> None:
        self.cfg, self.spec, self.recipe = cfg, spec, recipe
        self.run = resolve_run(spec.path) if spec.kind == "run" else None
        self.model_name = self.run.model if self.run else spec.model
        self._loaded: tuple[Any, Any] | None = None

    @property
    def local(self) -> bool:
        return self.spec.kind != "endpoint"

    def loaded(self) -> tuple[Any, Any]:
        if self._loaded is None:
            adapter = self.run.adapter if self.run else None
            self._loaded = load_for_inference(self.model_name, adapter, self.cfg.device, self.cfg.dtype)
        return self._loaded

    def batch_fn(self, structured: bool = True) -> Any:
        response_format = self.recipe.response_format if structured else None
        if not self.local:
            return EndpointGenerator(
                self.spec.base_url or "",
                self.spec.model,
                self.spec.api_key_env,
                self.cfg.max_new_tokens,
                self.cfg.temperature,
                response_format,
                self.cfg.concurrency,
            )
        generator: list[LocalGenerator] = []  # made on the first batch that is not cached (loads the model)

        def answer(batch: list[Any]) -> list[dict[str, Any]]:
            if not generator:
                grammar = grammar_of(response_format)
                generator.append(LocalGenerator(*self.loaded(), self.cfg.max_new_tokens, self.cfg.temperature, grammar))
            return generator[0](batch)

        return answer

    def close(self) -> None:
        self._loaded = None
        gc.collect()


def evaluate_candidate(
    cfg: EvalConfig,
    spec: CandidateSpec,
    items: list[TestItem],
    train: list[TestItem] | None,
    suite: RegressionSuite | None,
    metrics: list[str],
    primary: str,
    table: PriceTable,
) -> CandidateResult:
    """Answer the test set with one candidate (resuming from its cache) and measure everything."""
    recipe = candidate_recipe(cfg, spec, train)
    backend = _Backend(cfg, spec, recipe)
    try:
        prompts, passages = RecipePrompter(recipe, shots=train).prepare_with_passages([it.messages for it in items])
        batch = cfg.concurrency if spec.kind == "endpoint" else cfg.batch_size
        rows = generate_cached(
            backend.batch_fn(), prompts, GenerationCache(cache_path(cfg, spec)), batch, label=spec.label
        )
        refs = [it.reference for it in items]
        if recipe.json_schema is not None:  # "positive" (a JSON string) is scored as positive against plain refs
            rows = [
                {**r, "output": unwrap_answer(r["output"], is_json_answer(ref))}
                for r, ref in zip(rows, refs, strict=True)
            ]
        extra = model_scores(backend, prompts, rows, refs, metrics)
        examples = S.example_results(rows, refs, metrics, extra)
        regression = run_suite(cfg, spec, backend, suite) if suite else None
        hits = retrieval_hit_rate(passages, items) if passages is not None else None
    finally:
        backend.close()
    run = backend.run
    price_model = spec.price_model or backend.model_name
    return CandidateResult(
        name=spec.label,
        kind=spec.kind,
        model=backend.model_name,
        spec=spec.model_dump(mode="json"),
        metrics=S.headline_metrics(examples, refs, metrics, cfg.bootstrap_samples, cfg.seed),
        cost=S.cost_speed(examples, table, price_model),
        confusion=S.confusion(examples, refs) if "accuracy" in metrics else None,
        worst=S.worst_examples(examples, primary, cfg.worst_k),
        regression=regression,
        examples=examples,
        loss_curve=read_jsonl(run.metrics_file, skip_bad=True) if run and run.metrics_file else None,
        trained_tokens=run.trained_tokens if run else None,
        json_schema=recipe.json_schema,
        retrieval_hit_rate=hits,
    )


def candidate_recipe(cfg: EvalConfig, spec: CandidateSpec, train: list[TestItem] | None) -> Recipe:
    """The recipe a candidate is measured as (and deployed as): schema resolved, RAG index beside the report."""
    schema = resolve_schema(spec, train)
    recipe = recipe_for(spec, schema, cfg.train_file, cfg.seed, cfg.max_new_tokens, cfg.output_dir / "rag-index")
    return recipe.model_copy(update={"temperature": cfg.temperature})


def grammar_of(response_format: dict[str, Any] | None) -> str | None:
    """The llguidance grammar of a response_format (compiled and checked once per candidate)."""
    return grammar_for(response_format) if response_format else None


def retrieval_hit_rate(passages: list[list[Any]], items: list[TestItem]) -> float | None:
    """Share of test questions whose source document (``metadata.source``) is among the retrieved passages."""
    gold = [it.meta.get("source") for it in items]
    if not any(gold):
        return None
    return hit_rate(passages, [str(g) if g else None for g in gold])


def model_scores(
    backend: _Backend, prompts: list[Any], rows: list[dict[str, Any]], refs: list[str], metrics: list[str]
) -> dict[str, list[float]]:
    """Scores that need a model: embedding similarity, and reference NLL (local candidates only)."""
    extra: dict[str, list[float]] = {}
    if "semantic_similarity" in metrics:
        extra["semantic_similarity"] = semantic_similarity([r["output"] for r in rows], refs)
    if backend.local and ({"nll", "perplexity"} & set(metrics)):
        model, tok = backend.loaded()
        extra["nll"] = [reference_nll(model, tok, p, ref)[0] for p, ref in zip(prompts, refs, strict=True)]
    return extra


def run_suite(cfg: EvalConfig, spec: CandidateSpec, backend: _Backend, suite: RegressionSuite) -> RegressionResult:
    """Answer the regression suite's prompts and check their expectations."""
    prompts = [case.messages() for case in suite.cases]
    cache = GenerationCache(cache_path(cfg, spec, "-regression"))
    rows = generate_cached(  # general prompts: free text even for a structured candidate
        backend.batch_fn(structured=False), prompts, cache, cfg.batch_size, label=f"{spec.label} regression"
    )
    cases = []
    for case, row in zip(suite.cases, rows, strict=True):
        fails = check_case(case, row["output"])
        cases.append({"prompt": case.prompt, "output": row["output"], "passed": not fails, "failures": fails})
    return RegressionResult(pass_rate=sum(c["passed"] for c in cases) / len(cases), cases=cases)


def _named(results: list[CandidateResult], name: str) -> CandidateResult:
    return next(r for r in results if r.name == name)


def save_report(report: EvalReport, cfg: EvalConfig) -> None:
    """Write ``report.json``, ``report.html`` and the resolved ``config.yaml`` into the output directory."""
    write_json_atomic(cfg.output_dir / "report.json", report.model_dump(mode="json"))
    write_text_atomic(cfg.output_dir / "report.html", render_html(report))
    save_config(cfg, cfg.output_dir / "config.yaml")
