"""`tunesmith data augment|distill CONFIG.yaml --set key=value`: the YAML, typed flags and --set, in that order."""

from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

from tunesmith.augment.config import DistillConfig
from tunesmith.cli import app
from tunesmith.core.config import load_config


def read(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write_yaml(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


def test_augment_config_yaml_with_flags_and_set_overriding_it(teacher, source_file, tmp_path):
    out = tmp_path / "aug.jsonl"
    cfg = write_yaml(
        tmp_path / "augment.yaml",
        {
            "input": str(source_file),
            "output": str(out),
            "variations": 1,
            "teacher": {"model": "teacher-x", "base_url": teacher.base_url, "backoff_s": 0.01},
        },
    )
    result = CliRunner().invoke(app, ["data", "augment", str(cfg), "--quiet"])
    assert result.exit_code == 0, result.output
    # -n left at its default (3) does not override the YAML's variations: 1
    assert "6 accepted of 6 candidates; 12 examples written" in result.output and len(read(out)) == 12

    args = ["data", "augment", str(cfg), "-n", "2", "--set", "include_originals=false", "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "12 accepted of 12 candidates; 12 examples written" in result.output and len(read(out)) == 12


def test_augment_without_teacher_or_config_is_a_usage_error(source_file):
    result = CliRunner().invoke(app, ["data", "augment", str(source_file)])
    assert result.exit_code == 2 and "--teacher" in result.output


def test_flag_values_reach_the_config_as_typed(source_file):
    """A model named `123` stays a string (flags are not re-parsed as YAML); only -n 0 is wrong."""
    result = CliRunner().invoke(app, ["data", "augment", str(source_file), "--teacher", "123", "-n", "0"])
    assert result.exit_code != 0
    assert "variations" in str(result.exception) and "teacher" not in str(result.exception)


def test_distill_config_yaml_judge_takes_the_teachers_endpoint(teacher, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("first prompt here\nLOWSCORE second prompt\n")
    out = tmp_path / "cli.jsonl"
    cfg = write_yaml(
        tmp_path / "distill.yaml",
        {
            "prompts": str(prompts),
            "output": str(out),
            "min_score": 5,
            "judge": {"model": "j"},
            "teacher": {"model": "t", "base_url": teacher.base_url, "backoff_s": 0.01},
        },
    )
    loaded = load_config(DistillConfig, cfg)
    assert loaded.judge.base_url == teacher.base_url and loaded.judge.model == "j"
    assert loaded.teacher.temperature == 0.0  # distillation's default, not the teacher's generic 0.7

    result = CliRunner().invoke(app, ["data", "distill", str(cfg), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "1 accepted of 2 candidates" in result.output and "judge score below --min-score: 1" in result.output
    assert len(read(out)) == 1
