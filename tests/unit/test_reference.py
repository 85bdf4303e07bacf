"""docs/configuration.md stays generated from the config models; the demo config validates."""

from pathlib import Path

import pytest

from tunesmith.cli.demo import DemoConfig
from tunesmith.cli.reference import render_reference
from tunesmith.core.config import load_config
from tunesmith.core.errors import ConfigError

DOC = Path(__file__).parents[2] / "docs" / "configuration.md"


def test_configuration_reference_is_up_to_date():
    assert DOC.read_text(encoding="utf-8").strip() == render_reference().strip(), (
        "docs/configuration.md is stale: run `tunesmith reference > docs/configuration.md`"
    )


def test_reference_covers_every_stage_config():
    text = render_reference()
    for section in (
        "TrainConfig",
        "EvalConfig",
        "DecideConfig",
        "Recipe",
        "ServeSettings",
        "TaskProfile",
        "DemoConfig",
    ):
        assert f"`{section}`" in text
    assert "| `lora.r` |" in text  # sub-models are flattened with dotted keys


def test_demo_config_overrides_and_typos():
    cfg = load_config(DemoConfig, None, ["eval_limit=20", "train_overrides=[epochs=1]"])
    assert cfg.eval_limit == 20 and cfg.train_overrides == ["epochs=1"]
    with pytest.raises(ConfigError, match="eval_limt: unknown key"):
        load_config(DemoConfig, None, ["eval_limt=20"])
