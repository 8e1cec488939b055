"""P3B inter-block budget: benefit transform, keep-ratio solve, schedules."""
import math

import numpy as np
import pytest
import torch

from mmsparse.p3b.budget import (choose_num_pruned, ramp_keep_ratios,
                                 soft_mask, solve_keep_ratios, temperature,
                                 transform_benefit)


def _budget(kr, weights, keep, nb):
    return float((kr * weights).sum() + nb), keep * float(weights.sum() + nb)


def test_solve_meets_budget_exactly_and_is_proportional():
    gen = torch.Generator().manual_seed(0)
    imp = torch.rand(24, generator=gen) + 0.1
    weights = torch.randint(1000, 5000, (24, ), generator=gen).double()
    nb = 3000.0
    kr = solve_keep_ratios(imp, weights, 0.4, nb)
    got, want = _budget(kr, weights, 0.4, nb)
    assert got == pytest.approx(want, rel=1e-12)
    assert ((kr > 0) & (kr < 1)).all()
    ratio = kr / imp.double()
    assert torch.allclose(ratio, ratio[0].expand_as(ratio))


def test_solve_clamps_dense_blocks_and_resolves_the_rest():
    imp = torch.tensor([10.0, 1.0, 1.0, 2.0])
    weights = torch.tensor([100.0, 100.0, 100.0, 100.0])
    kr = solve_keep_ratios(imp, weights, 0.6, 0.0)
    assert kr[0] == 1.0  # would be 10 * sigma > 1 -> fixed dense
    got, want = _budget(kr, weights, 0.6, 0.0)
    assert got == pytest.approx(want, rel=1e-12)
    # the others keep their importance ratios after the re-solve
    assert kr[3] / kr[1] == pytest.approx(2.0)
    assert kr[1] == pytest.approx(kr[2])
    assert kr.max() <= 1 and kr.min() >= 0


def test_solve_switches_off_zero_importance_and_handles_chains():
    imp = torch.tensor([0.0, 50.0, 20.0, 1.0, 1.0])
    weights = torch.full((5, ), 10.0)
    kr = solve_keep_ratios(imp, weights, 0.5, 0.0)
    assert kr[0] == 0.0
    assert kr[1] == 1.0 and kr[2] == 1.0  # second one clamps after the re-solve
    got, want = _budget(kr, weights, 0.5, 0.0)
    assert got == pytest.approx(want)


def test_solve_uniform_and_infeasible_budget():
    weights = torch.tensor([10.0, 30.0, 60.0])
    kr = solve_keep_ratios(torch.ones(3), weights, 0.5, 20.0)
    assert torch.allclose(kr, torch.full((3, ), (0.5 * 120 - 20) / 100,
                                         dtype=torch.float64))
    with pytest.raises(ValueError, match='keep_ratio=0.1 is below'):
        solve_keep_ratios(torch.ones(3), weights, 0.1, 20.0)


def _reference_transform(benefit, kept, prev, scale=10.0, gamma=0.2):
    a = np.asarray(benefit, dtype=np.float64)
    a = scale * a / a.max()
    softplus = lambda v: np.log1p(np.exp(v))  # noqa: E731
    a = softplus(1.4 * a) - softplus(1.4 * a - scale)
    a = a / (np.asarray(kept) + 1e-6)
    a = a / a.mean()
    return a if prev is None else gamma * a + (1 - gamma) * np.asarray(prev)


def test_benefit_transform_matches_the_formula_and_ema():
    benefit = torch.tensor([0.5, 0.1, -0.2, 2.0, 0.0])
    kept = torch.tensor([100.0, 50.0, 200.0, 400.0, 10.0])
    first = transform_benefit(benefit, kept)
    np.testing.assert_allclose(first.numpy(),
                               _reference_transform(benefit, kept, None),
                               rtol=1e-7)  # torch's softplus threshold
    assert first.mean().item() == pytest.approx(1.0)
    second = transform_benefit(benefit * 3, kept * 0.5, prev=first)
    np.testing.assert_allclose(
        second.numpy(),
        _reference_transform(benefit * 3, kept * 0.5, first.numpy()),
        rtol=1e-7)
    # smooth clamp: bounded, positive and monotone in the benefit
    clamp = transform_benefit(torch.linspace(-5, 5, 11), torch.ones(11))
    assert (clamp > 0).all() and (clamp.diff() >= 0).all()
    # no block helps: uniform, not a division by a negative maximum
    flat = transform_benefit(torch.tensor([-1.0, -2.0]), torch.ones(2))
    assert torch.allclose(flat, torch.ones(2, dtype=torch.float64))


def test_ramp_and_temperature_schedule():
    goal = torch.tensor([0.2, 1.0, 0.0])
    assert torch.allclose(ramp_keep_ratios(goal, 4, 10, 20), torch.ones(3))
    mid = ramp_keep_ratios(goal, 14, 10, 20)  # (14 + 1 - 10) / 10 = 0.5
    assert torch.allclose(mid, torch.tensor([0.6, 1.0, 0.5]))
    assert torch.allclose(ramp_keep_ratios(goal, 30, 10, 20), goal)
    assert temperature(5, 20, 40) == pytest.approx(0.1)
    assert temperature(30, 20, 40) == pytest.approx(0.05)
    assert temperature(40, 20, 40) == 0.0
    assert temperature(10, 20, 20) == 0.1 and temperature(20, 20, 20) == 0.0


def test_soft_mask_temperature():
    n, k = 200, 60
    for tau in (0.1, 0.05, 0.01):
        m = soft_mask(n, k, tau)
        assert int((m >= 0.5).sum()) == n - k
        assert (m.diff() >= 0).all() and m[k] > m[k - 1]
        # one temperature width (tau * n positions) above / below: 0.9 / 0.1
        width = tau * n
        pos = torch.arange(1, n + 1, dtype=torch.float64)
        expect = torch.sigmoid(math.log(9) * (pos - k - 0.5) / width)
        assert torch.allclose(m, expect)
        assert torch.sigmoid(torch.tensor(math.log(9.0))) == pytest.approx(.9)
    sharp, soft = soft_mask(n, k, 0.01), soft_mask(n, k, 0.1)
    # annealing moves every value toward 0/1
    assert ((sharp - 0.5).abs() >= (soft - 0.5).abs() - 1e-12).all()
    hard = soft_mask(n, k, 0.0)
    assert set(hard.unique().tolist()) == {0.0, 1.0}
    assert int(hard.sum()) == n - k


def test_choose_num_pruned_picks_the_closest_count():
    params = torch.tensor([100.0, 90.0, 70.0, 65.0, 20.0])
    assert choose_num_pruned(params, 66.0) == (3, 65.0)
    assert choose_num_pruned(params, 68.0) == (2, 70.0)
    assert choose_num_pruned(params, 80.0) == (1, 90.0)  # tie -> fewer pruned
    assert choose_num_pruned(params, 1000.0) == (0, 100.0)
