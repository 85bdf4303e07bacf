"""Fixtures for the data-stage tests: the committed assets in tests/assets/data/."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

DATA = Path(__file__).parents[2] / "assets" / "data"


def _generator():
    spec = importlib.util.spec_from_file_location("data_assets", DATA / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def assets() -> Path:
    """The asset folder."""
    return DATA


@pytest.fixture(scope="session")
def expected() -> dict:
    """code -> (severity, line) for each asset file."""
    return _generator().EXPECTED
