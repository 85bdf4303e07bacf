"""`teacher.base_url: local`: distill and augment answered by the generation engine on this machine (tiny random
Llama), with the same answers as plain `generate`, the same request cache, and clear errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tunesmith.augment.augment import run_augment
from tunesmith.augment.config import AugmentConfig, DistillConfig, TeacherSettings
from tunesmith.augment.distill import run_distill
from tunesmith.cli import app
from tunesmith.core.errors import ModelError

PROMPTS = [
    "What is LoRA in one line?",
    "Why fine-tune a small model?",
    "Name a primary colour.",
    "Say hello in French.",
    "What is two plus two?",
]
SYSTEM = "Be brief."


@pytest.fixture(autouse=True)
def no_api_key(monkeypatch):
    """A local teacher needs no key: none is set."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


@pytest.fixture
def prompts_file(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("\n".join(PROMPTS) + "\n")
    return path


@pytest.fixture(scope="module")
def tiny_run(tiny_model_dir, tmp_path_factory):
    """A `tunesmith train` run directory: a random LoRA adapter on the tiny model."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    run = tmp_path_factory.mktemp("run")
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    peft = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft.save_pretrained(run / "adapter")
    (run / "run.json").write_text(json.dumps({"status": "succeeded", "model": str(tiny_model_dir)}))
    return run


def greedy_answers(model, tok, max_tokens: int) -> list[str]:
    """Plain one-at-a-time `generate`, as the expected answers."""
    from tunesmith.models.generate import end_token_ids, generate_ids, split_at_end
    from tunesmith.models.template import prompt_ids

    ends = end_token_ids(model, tok)
    out = []
    for p in PROMPTS:
        ids = prompt_ids(tok, [{"role": "system", "content": SYSTEM}, {"role": "user", "content": p}])
        tokens, _ = split_at_end(generate_ids(model, tok, [ids], max_tokens)[0], ends)
        out.append(tok.decode(tokens, skip_special_tokens=True).strip())
    return out


def distill_config(model, prompts, out, **teacher) -> DistillConfig:
    settings = {"model": str(model), "base_url": "local", "max_tokens": 6, "concurrency": 2, **teacher}
    return DistillConfig.model_validate({"prompts": prompts, "output": out, "system": SYSTEM, "teacher": settings})


def read(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def answered(out, rejects) -> list[str | None]:
    """Each prompt's distilled answer ('' where it was rejected as empty), in prompt order."""
    by_prompt = {r["messages"][1]["content"]: r["messages"][-1]["content"] for r in read(out)}
    empty = {r["prompt"] for r in read(rejects) if r["reason"] == "teacher returned an empty answer"}
    assert set(by_prompt) | empty == set(PROMPTS)
    return [by_prompt.get(p, "") for p in PROMPTS]


def test_distill_on_the_local_engine_answers_as_generate_and_reruns_from_the_cache(
    tiny_model_dir, prompts_file, tmp_path
):
    from tunesmith.models.load import load_model_and_tokenizer

    out = tmp_path / "d.jsonl"
    cfg = distill_config(tiny_model_dir, prompts_file, out)
    report = run_distill(cfg, show_progress=False)
    model, tok = load_model_and_tokenizer(str(tiny_model_dir), device="cpu")
    assert answered(out, tmp_path / "d.rejects.jsonl") == greedy_answers(model.eval(), tok, 6)
    assert report.requested == 5 and report.generated == 5 and report.http_requests == 0 and report.cost_usd == 0.0
    assert report.prompt_tokens > 0 and report.completion_tokens > 0
    written = read(out)
    again = run_distill(cfg, show_progress=False)
    assert again.cache_hits == 5 and again.generated == 0 and read(out) == written


def test_a_run_directory_teacher_answers_with_its_adapter(tiny_model_dir, tiny_run, prompts_file, tmp_path):
    from peft import PeftModel

    from tunesmith.models.load import load_model_and_tokenizer

    out = tmp_path / "d.jsonl"
    run_distill(distill_config(tiny_run, prompts_file, out), show_progress=False)
    base, tok = load_model_and_tokenizer(str(tiny_model_dir), device="cpu")
    tuned = PeftModel.from_pretrained(base, str(tiny_run / "adapter")).eval()
    assert answered(out, tmp_path / "d.rejects.jsonl") == greedy_answers(tuned, tok, 6)
    assert all(r["metadata"]["distill"]["teacher"] == str(tiny_run) for r in read(out))


def test_sampled_answers_are_seeded_by_the_request(tiny_model_dir, prompts_file, tmp_path):
    first, second, greedy = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "g.jsonl"
    for out in (first, second):  # separate caches: both are generated, not read back
        run_distill(distill_config(tiny_model_dir, prompts_file, out, temperature=1.0), show_progress=False)
    run_distill(distill_config(tiny_model_dir, prompts_file, greedy), show_progress=False)
    assert read(first) == read(second)
    sampled = answered(first, tmp_path / "a.rejects.jsonl")
    assert sampled != answered(greedy, tmp_path / "g.rejects.jsonl")  # the temperature is applied


def test_retrained_weights_are_asked_again(tiny_model_dir, tiny_run, prompts_file, tmp_path):
    import os

    out = tmp_path / "d.jsonl"
    cfg = distill_config(tiny_run, prompts_file, out)
    assert run_distill(cfg, show_progress=False).generated == 5
    weights = next((tiny_run / "adapter").glob("*.safetensors"))
    stat = weights.stat()
    try:
        os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # as a new training run would
        again = run_distill(cfg, show_progress=False)
    finally:
        os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert again.generated == 5 and again.cache_hits == 0


def test_an_interrupt_stops_the_engine_and_caches_nothing_cut_short(tiny_model_dir, tmp_path):
    import asyncio

    from tunesmith.augment.client import Job, RequestCache
    from tunesmith.augment.local import LocalTeacher

    settings = TeacherSettings(model=str(tiny_model_dir), base_url="local", max_tokens=32, concurrency=2)
    cache = RequestCache(tmp_path / "cache.jsonl")
    jobs = {i: Job([{"role": "user", "content": f"question number {i}"}]) for i in range(40)}
    ended = []

    async def interrupted() -> None:
        async with LocalTeacher(settings, cache) as teacher:
            task = asyncio.ensure_future(teacher.complete_all(jobs, lambda key, result: ended.append(key)))
            while not ended:  # Ctrl-C once the first answers are in
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(interrupted())  # returns: the worker thread saw the interrupt and ended
    cache.close()
    assert 1 <= len(ended) < 40 and len(RequestCache(tmp_path / "cache.jsonl").rows) == len(ended)


def test_a_judge_this_machine_does_not_have_fails_before_the_teacher_runs(tiny_model_dir, prompts_file, tmp_path):
    cfg = DistillConfig.model_validate(
        {
            "prompts": prompts_file,
            "output": tmp_path / "d.jsonl",
            "teacher": {"model": str(tiny_model_dir), "base_url": "local", "max_tokens": 4},
            "judge": {"model": "gpt-4o-mini"},  # inherits base_url: local
        }
    )
    with pytest.raises(ModelError, match=r"judge\.model \(base_url: local\)"):
        run_distill(cfg, show_progress=False)
    assert not (tmp_path / "d.jsonl.cache.jsonl").exists()  # nothing was generated


def test_a_prompt_too_long_for_the_model_is_rejected_alone(tiny_model_dir, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("Short question?\n" + "word " * 1100 + "\n")
    out = tmp_path / "d.jsonl"
    report = run_distill(distill_config(tiny_model_dir, prompts, out), show_progress=False)
    rejects = read(tmp_path / "d.rejects.jsonl")
    too_long = [r for r in rejects if "exceeds the teacher's context of 1024 tokens" in r["reason"]]
    assert len(too_long) == 1 and too_long[0]["source_line"] == 2
    assert report.requested == 2 and report.accepted + report.rejected == 2


def test_a_run_directory_without_a_model_fails_before_any_request(tmp_path, prompts_file):
    run = tmp_path / "broken-run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    with pytest.raises(ModelError, match="has neither adapter/"):
        run_distill(distill_config(run, prompts_file, tmp_path / "d.jsonl"), show_progress=False)


def test_augment_on_the_local_engine_reports_every_variation(tiny_model_dir, tmp_path):
    from tests.conftest import chat, write_jsonl

    src = write_jsonl(tmp_path / "s.jsonl", [chat(p, "ok") for p in PROMPTS[:3]])
    out = tmp_path / "a.jsonl"
    teacher = TeacherSettings(model=str(tiny_model_dir), base_url="local", max_tokens=8)
    report = run_augment(AugmentConfig(input=src, output=out, teacher=teacher, variations=2), show_progress=False)
    # a random model writes no JSON list of paraphrases: every variation is rejected, with the reason
    assert report.requested == 6 and report.http_requests == 0 and report.completion_tokens > 0
    rejects = read(tmp_path / "a.rejects.jsonl")
    assert len(rejects) == report.rejected and all("teacher reply" in r["reason"] for r in rejects)


def test_cli_distill_with_base_url_local_needs_no_api_key(tiny_model_dir, prompts_file, tmp_path):
    out = tmp_path / "d.jsonl"
    args = ["data", "distill", str(prompts_file), "--teacher", str(tiny_model_dir), "--base-url", "local"]
    result = CliRunner().invoke(app, [*args, "--max-tokens", "4", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "5 generated on this machine" in result.output and "estimated cost $0.0000" in result.output
    assert out.exists()
