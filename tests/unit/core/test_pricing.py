"""The price table: lookups with the ``ft:`` fallback, and file errors that name the file and the fix."""

from __future__ import annotations

import pytest

from tunesmith.core.errors import ConfigError
from tunesmith.core.pricing import load_price_table, parse_price_table


def test_fine_tuned_names_fall_back_to_their_base_and_unknown_models_are_named():
    table = parse_price_table(
        "models:\n  base-m:\n    as_of: '2025-01-01'\n    input: 1\n    output: 2\n    training: 4\n", "t.yaml"
    )
    assert table.price("ft:base-m:org:x").input == 1.0
    assert table.query_cost("base-m", 1_000_000, 500_000) == pytest.approx(2.0)
    assert table.training_cost("base-m", 250_000) == pytest.approx(1.0)
    with pytest.raises(ConfigError, match=r"no price for model 'other' in the price table") as exc:
        table.price("other")
    assert "base-m" in exc.value.hint


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, r"missing\.yaml \(from --prices / `prices:`\): no such file"),
        ("models: [unclosed\n", r"bad\.yaml is not valid YAML"),
        ("- gpt-4o\n", r"expected a mapping with a `models:` key .* got a list"),
        ("", r"expected a mapping with a `models:` key .* got nothing"),
        ("models:\n  m:\n    as_of: x\n    input: -1\n", r"2 problem\(s\): models\.m\.input: .*models\.m\.output"),
    ],
)
def test_price_file_errors_name_the_file_and_the_fix(tmp_path, content, match):
    path = tmp_path / ("missing.yaml" if content is None else "bad.yaml")
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=match) as exc:
        load_price_table(path)
    assert exc.value.hint


def test_price_file_from_the_environment_is_named_in_the_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNESMITH_PRICES", str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match=r"nope\.yaml \(from \$TUNESMITH_PRICES\): no such file") as exc:
        load_price_table()
    assert "$TUNESMITH_PRICES" in exc.value.hint
