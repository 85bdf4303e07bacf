"""Every YAML under configs/ names the command that runs it and validates as that command's config."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunesmith.advise.profile import TaskProfile
from tunesmith.augment.config import AugmentConfig, DistillConfig
from tunesmith.core.config import load_config
from tunesmith.data.config import DataConfig
from tunesmith.evaluate.config import EvalConfig
from tunesmith.evaluate.regression import load_suite
from tunesmith.ladder.config import DecideConfig
from tunesmith.train.config import TrainConfig

REPO = Path(__file__).parents[2]
CONFIGS = sorted((REPO / "configs").rglob("*.yaml"))
# The command in a config's first line -> the model `tunesmith` validates it as.
MODELS = {
    "train": TrainConfig,
    "eval": EvalConfig,
    "decide": DecideConfig,
    "advise": TaskProfile,
    "data prepare": DataConfig,
    "data augment": AugmentConfig,
    "data distill": DistillConfig,
}
SUITES = {"configs/eval/regression.yaml"}  # regression suites, read by an EvalConfig's regression_suite


def test_configs_cover_every_command_that_takes_a_config():
    configs = [p for p in CONFIGS if p.relative_to(REPO).as_posix() not in SUITES]
    commands = {" ".join(p.read_text().splitlines()[0].split()[2:-1]) for p in configs}
    assert commands >= set(MODELS), f"no example config for {set(MODELS) - commands}"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_every_config_names_its_command_and_validates(path: Path):
    rel = path.relative_to(REPO).as_posix()
    if rel in SUITES:
        assert load_suite(path).cases
        return
    words = path.read_text().splitlines()[0].split()
    assert words[:2] == ["#", "tunesmith"] and words[-1] == rel, "the first line gives the command that runs it"
    command = " ".join(words[2:-1])
    assert command in MODELS, f"{rel}: `tunesmith {command}` takes no config this test knows; add it to MODELS"
    load_config(MODELS[command], path)
