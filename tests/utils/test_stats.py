"""The shared statistics helper: intervals against scipy and against what pairing must do."""
import numpy as np
import pytest
from scipy import stats as sps

from mmsparse.utils.stats import (format_diff, paired_bootstrap,
                                  paired_bootstrap_mean, paired_seed_interval)


def test_seed_interval_equals_scipy_paired_t():
    rng = np.random.default_rng(0)
    b = rng.normal(70, 3, size=5)
    a = b + rng.normal(1.0, 0.5, size=5)
    res = paired_seed_interval(a, b)
    ci = sps.ttest_rel(a, b).confidence_interval(0.95)
    assert res['diff'] == pytest.approx(np.mean(a - b))
    assert (res['low'], res['high']) == pytest.approx((ci.low, ci.high))
    assert res['n'] == 5 and len(res['per_item']) == 5
    # a 99 % interval is wider
    wide = paired_seed_interval(a, b, confidence=0.99)
    assert wide['low'] < res['low'] and wide['high'] > res['high']


def test_seed_interval_pairing_removes_shared_seed_noise():
    # seeds move both rows by a lot; the paired difference is exactly 1
    shared = np.array([60.0, 75.0, 90.0, 55.0])
    res = paired_seed_interval(shared + 1, shared)
    assert res['diff'] == pytest.approx(1.0)
    assert res['high'] - res['low'] == pytest.approx(0.0, abs=1e-12)


def test_seed_interval_rejects_bad_input():
    with pytest.raises(ValueError, match='equal length'):
        paired_seed_interval([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match='confidence'):
        paired_seed_interval([1, 2], [1, 2], confidence=95)
    one = paired_seed_interval([1.0], [0.0])
    assert one['diff'] == 1.0 and np.isnan(one['low'])


def test_bootstrap_mean_pairs_items():
    rng = np.random.default_rng(1)
    n = 2000
    hard = rng.random(n) < 0.3          # items both rows find hard
    a = (~hard).astype(float)
    b = a.copy()
    flip = rng.choice(np.flatnonzero(a == 1), size=40, replace=False)
    b[flip] = 0.0                       # b misses 40 items a gets right
    res = paired_bootstrap_mean(a, b, n_boot=500, seed=0)
    assert res['diff'] == pytest.approx(40 / n)
    assert 0 < res['low'] < res['diff'] < res['high']
    # the paired interval is far narrower than the unpaired spread of accuracy
    unpaired_half = 1.96 * np.sqrt(a.mean() * (1 - a.mean()) / n) * np.sqrt(2)
    assert res['high'] - res['low'] < unpaired_half
    # same seed, same draws: identical result
    assert paired_bootstrap_mean(a, b, n_boot=500, seed=0) == res


def test_bootstrap_calls_score_functions_with_repeated_indices():
    seen = []

    def score(idx):
        seen.append(np.asarray(idx).copy())
        return float(len(idx))

    res = paired_bootstrap(score, lambda idx: 0.0, n_items=7, n_boot=20)
    assert res['diff'] == 7.0 and res['low'] == res['high'] == 7.0
    np.testing.assert_array_equal(seen[0], np.arange(7))
    assert all(len(s) == 7 for s in seen[1:])
    assert any(len(np.unique(s)) < 7 for s in seen[1:])


def test_format_diff():
    res = dict(diff=0.0123, low=-0.004, high=0.0286)
    assert format_diff(res, scale=100) == '+1.23 [-0.40, +2.86]'
    assert format_diff(dict(diff=1.0, low=float('nan'), high=float('nan'))) \
        == '+1.00 [nan, nan]'
    # A t interval from one seed says so instead of printing '[nan, nan]'; two seeds print it.
    assert format_diff(paired_seed_interval([0.31], [0.30]), scale=100, digits=1) \
        == '+1.0 (1 seed: no interval)'
    assert format_diff(paired_seed_interval([0.31, 0.33], [0.30, 0.30]), scale=100,
                       digits=1).startswith('+2.0 [')
    assert format_diff(paired_seed_interval([], [])) == 'nan (0 seeds: no interval)'
