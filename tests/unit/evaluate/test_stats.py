"""Bootstrap intervals and paired tests: seeded, sane, and correct on known cases."""

from __future__ import annotations

import pytest

from tunesmith.evaluate import stats


def test_bootstrap_ci_is_seeded_and_brackets_the_mean():
    values = [1, 0, 1, 1, 0, 1, 1, 0, 1, 1] * 3
    a = stats.bootstrap_ci(values, samples=500, seed=1)
    b = stats.bootstrap_ci(values, samples=500, seed=1)
    assert a == b
    mean, lo, hi = a
    assert mean == pytest.approx(0.7)
    assert lo < mean < hi
    assert lo > 0.4 and hi < 0.95


def test_bootstrap_ci_constant_values_has_zero_width():
    assert stats.bootstrap_ci([1.0] * 10, samples=200) == (1.0, 1.0, 1.0)


def test_paired_bootstrap_detects_a_clear_gain_and_not_a_null_one():
    better = [1] * 18 + [0] * 2
    worse = [0] * 14 + [1] * 6
    res = stats.paired_bootstrap(better, worse, samples=1000, seed=0)
    assert res["diff"] == pytest.approx(0.6)
    assert res["low"] > 0
    assert res["p_value"] < 0.01
    same = stats.paired_bootstrap(better, better, samples=200, seed=0)
    assert same["diff"] == 0 and same["p_value"] == 1.0


def test_mcnemar_exact_known_value():
    # 6 discordant pairs, all favour a: two-sided exact p = 2 * (1/2)^6
    a = [True] * 6 + [True, False]
    b = [False] * 6 + [True, False]
    res = stats.mcnemar_exact(a, b)
    assert res["only_a"] == 6 and res["only_b"] == 0
    assert res["p_value"] == pytest.approx(2 / 64)


def test_flips_lists_both_directions():
    f = stats.flips([True, True, False, False], [True, False, True, False])
    assert f == {"pass_to_fail": [1], "fail_to_pass": [2]}


def test_macro_statistic_bootstrap():
    import numpy as np

    vals = np.array([0.0, 1.0, 1.0, 0.0])
    value, lo, hi = stats.bootstrap_stat(lambda idx: float(vals[idx].mean()), 4, samples=300, seed=3)
    assert value == 0.5 and 0 <= lo <= value <= hi <= 1
