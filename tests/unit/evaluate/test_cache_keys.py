"""The generation cache survives a torn last line, and a retrained run never reuses stale answers."""

from __future__ import annotations

import json
import os

from tunesmith.evaluate.config import CandidateSpec, EvalConfig
from tunesmith.evaluate.generate import GenerationCache
from tunesmith.evaluate.run import candidate_hash


def test_torn_last_line_is_dropped_before_new_rows_are_appended(tmp_path):
    path = tmp_path / "cache.jsonl"
    path.write_text(json.dumps({"index": 0, "output": "a"}) + "\n" + '{"index": 1, "outp')
    cache = GenerationCache(path)
    assert set(cache.rows) == {0}
    cache.append([{"index": 1, "output": "b"}])
    assert set(GenerationCache(path).rows) == {0, 1}  # the new row is not glued to the torn bytes


def test_retraining_into_the_same_run_dir_changes_the_cache_key(tmp_path):
    test = tmp_path / "test.jsonl"
    test.write_text(
        json.dumps({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}) + "\n"
    )
    run = tmp_path / "run"
    (run / "adapter").mkdir(parents=True)
    weights = run / "adapter" / "adapter_model.safetensors"
    weights.write_bytes(b"1" * 10)
    spec = CandidateSpec(kind="run", path=run)
    cfg = EvalConfig(test_file=test, candidates=[spec], output_dir=tmp_path / "out")
    before = candidate_hash(cfg, spec)
    assert candidate_hash(cfg, spec) == before  # stable while nothing changes
    weights.write_bytes(b"2" * 12)
    os.utime(weights, ns=(1, 1))
    assert candidate_hash(cfg, spec) != before


def test_weights_in_another_dtype_get_their_own_cache_key_and_float32_keeps_the_old_one(tmp_path):
    import hashlib

    from tunesmith.evaluate.run import sha256_file

    test = tmp_path / "test.jsonl"
    test.write_text(
        json.dumps({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}) + "\n"
    )
    spec = CandidateSpec(kind="zero-shot")
    keys = {
        dtype: candidate_hash(EvalConfig(test_file=test, candidates=[spec], dtype=dtype), spec)
        for dtype in ("float32", "bfloat16")
    }
    assert keys["float32"] != keys["bfloat16"]
    cfg = EvalConfig(test_file=test, candidates=[spec])  # the key as it was computed before `dtype` existed:
    parts = [spec.model_dump_json(), str(cfg.max_new_tokens), str(cfg.temperature), str(cfg.seed), sha256_file(test)]
    assert keys["float32"] == hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
