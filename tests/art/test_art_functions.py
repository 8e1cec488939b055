"""Unit tests of the plain-PyTorch ART functions (mmsparse.art)."""
import math

import pytest
import torch
import torch.nn as nn

from mmsparse.art import (HS_INFLECTION, HyperSparseFunction, SlidingWindow,
                          apply_masks_, art_lambda, check_regularizer,
                          check_sparsity, global_magnitude_masks, gmp_sparsity,
                          hypersparse_grad, hypersparse_loss,
                          hypersparse_stats, magnitude_quantile,
                          mask_optimizer_state_, mask_sparsity, masks_equal,
                          prunable_weights, regularization_loss,
                          step_decay_factor)


def _reference_hypersparse(weights, kappa):
    """The paper's definition with autograd, a full sort and stop-gradients:
    R = ‖w‖₁ · T / sg(T) − ‖w‖₁, s = artanh(1/√3) / sorted|w|[floor(κn)]."""
    w = torch.cat([x.reshape(-1) for x in weights])
    a = w.abs()
    srt, _ = torch.sort(a.detach())
    s = math.atanh(1 / math.sqrt(3)) / srt[math.floor(kappa * a.numel())]
    t = torch.tanh(s * a).sum()
    return a.sum() * t / t.detach() - a.sum()


def _weights(dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(6, 4, generator=g, dtype=dtype).requires_grad_(),
        torch.randn(9, generator=g, dtype=dtype).requires_grad_(),
        (0.1 * torch.randn(3, 2, 2, generator=g, dtype=dtype)).requires_grad_(),
    ]


@pytest.mark.parametrize('t0_scale', [1.0, 0.7])
def test_hypersparse_closed_form_gradcheck(t0_scale):
    """Closed-form backward vs finite differences (float64)."""
    ws = _weights()
    with torch.no_grad():
        s = torch.tensor(1.7, dtype=torch.float64)
        t0 = sum(torch.tanh(s * w.abs()).sum() for w in ws) * t0_scale
    assert torch.autograd.gradcheck(
        lambda *w: HyperSparseFunction.apply(s, t0, *w), ws, eps=1e-6,
        atol=1e-7)


@pytest.mark.parametrize('kappa', [0.5, 0.9, 0.98])
def test_hypersparse_matches_reference_autograd(kappa):
    ws = _weights(seed=1)
    ref = _reference_hypersparse(ws, kappa)
    ref_grads = torch.autograd.grad(ref, ws)
    value = hypersparse_loss(ws, kappa)
    grads = torch.autograd.grad(value, ws)
    assert abs(float(value)) < 1e-12 and abs(float(ref)) < 1e-12
    for g, r, c in zip(grads, ref_grads, hypersparse_grad(ws, kappa)):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(c, r, rtol=1e-10, atol=1e-12)


def test_hypersparse_gradient_shape():
    """Small weights get ~ the same push (like L1, gain >= 1); weights far
    above the threshold get almost none; saturating the large weights raises
    the push on the small ones (exploration vs exploitation)."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(2000, generator=g, dtype=torch.float64)
    grad = hypersparse_grad([w], 0.9)[0]
    small = w.abs() < w.abs().quantile(0.1)
    large = w.abs() > w.abs().quantile(0.99)
    assert grad[small].abs().min() > 2 * grad[large].abs().max()
    assert torch.equal(torch.sign(grad), torch.sign(w))
    gain_dense = hypersparse_stats([w], 0.9)['gain']
    w2 = w.clone()
    w2[large] *= 20  # as after ART: a few weights far above the threshold
    grad2 = hypersparse_grad([w2], 0.9)[0]
    assert grad2[small].abs().min() > 1e6 * grad2[large].abs().max()
    assert grad2[small].abs().min() > grad[small].abs().max()
    gain_saturated = hypersparse_stats([w2], 0.9)['gain']
    assert 1.0 <= gain_dense < gain_saturated
    # gradient at w -> 0 equals the gain
    tiny = torch.cat([w2, torch.tensor([1e-9], dtype=torch.float64)])
    g0 = hypersparse_grad([tiny], 0.9)[0][-1]
    assert math.isclose(float(g0), hypersparse_stats([tiny], 0.9)['gain'],
                        rel_tol=1e-6)


def test_hypersparse_zero_quantile_is_finite():
    w = torch.zeros(100)
    w[-3:] = torch.tensor([0.5, -1.0, 2.0])
    w.requires_grad_()
    loss = hypersparse_loss([w], 0.9)
    (grad, ) = torch.autograd.grad(loss, [w])
    assert torch.isfinite(grad).all() and torch.isfinite(loss)


def test_l1_l2_regularizers():
    ws = _weights()
    l1 = regularization_loss('l1', ws, 0.9)
    l2 = regularization_loss('L2', ws, 0.9)
    assert torch.isclose(l1, sum(w.abs().sum() for w in ws))
    assert torch.isclose(l2, sum((w**2).sum() for w in ws))
    grads = torch.autograd.grad(l2, ws)
    for g, w in zip(grads, ws):
        torch.testing.assert_close(g, 2 * w)


def test_bad_regularizer_and_sparsity():
    with pytest.raises(ValueError, match='regularizer must be one of'):
        check_regularizer('l0')
    for bad in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match='target_sparsity'):
            check_sparsity(bad)
    with pytest.raises(TypeError, match='target_sparsity'):
        check_sparsity('0.9')


def test_quantile_matches_sort():
    g = torch.Generator().manual_seed(3)
    for n in (1, 7, 1000, 4097):
        x = torch.rand(n, generator=g)
        x[:n // 3] = x[0]  # ties
        srt, _ = torch.sort(x)
        for kappa in (0.0, 0.5, 0.9, 0.995):
            expect = srt[min(math.floor(kappa * n), n - 1)]
            assert magnitude_quantile(x, kappa) == expect


def test_global_masks_exact_count_and_order():
    g = torch.Generator().manual_seed(0)
    weights = {
        'a': torch.randn(10, 10, generator=g),
        'b': torch.randn(37, generator=g) * 3,
        'c': torch.zeros(13),  # ties at zero
    }
    n = sum(w.numel() for w in weights.values())
    for sparsity in (0.05, 0.5, 0.9, 0.98):
        masks = global_magnitude_masks(weights, sparsity)
        pruned = sum(int((~m).sum()) for m in masks.values())
        assert pruned == round(sparsity * n)
        pairs = list(zip(weights.values(), masks.values()))
        kept = torch.cat([w[m].abs() for w, m in pairs])
        gone = torch.cat([w[~m].abs() for w, m in pairs])
        assert gone.max() <= kept.min()
        assert masks_equal(masks, global_magnitude_masks(weights, sparsity))
    # layer sparsities emerge: the small-magnitude zeros go first
    masks = global_magnitude_masks(weights, 0.1)
    assert not masks['c'].any()
    sparsity, per_layer = mask_sparsity(masks)
    assert math.isclose(sparsity, round(0.1 * n) / n)
    assert per_layer['c'] == 1.0
    # all-equal magnitudes: ties broken by position, count still exact
    flat = {'x': torch.ones(10)}
    m = global_magnitude_masks(flat, 0.3)['x']
    assert m.tolist() == [False] * 3 + [True] * 7


def test_masked_training_keeps_pruned_weights_zero():
    """SGD with momentum + weight decay and AdamW: after masking the weights
    and the optimizer state after every step, pruned entries stay 0."""
    for opt_cls, kwargs in ((torch.optim.SGD,
                             dict(lr=0.1, momentum=0.9, weight_decay=1e-2)),
                            (torch.optim.AdamW, dict(lr=1e-2))):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
        opt = opt_cls(model.parameters(), **kwargs)
        weights = prunable_weights(model)
        x, y = torch.randn(32, 8), torch.randint(0, 3, (32, ))
        for step in range(12):
            if step == 4:  # prune with non-empty momentum
                masks = global_magnitude_masks(weights, 0.8)
                apply_masks_(weights, masks)
                mask_optimizer_state_(opt, weights, masks)
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            if step >= 4:
                apply_masks_(weights, masks)
                mask_optimizer_state_(opt, weights, masks)
        kept = torch.cat([w[masks[n]] for n, w in weights.items()])
        assert (kept != 0).all()
        for name, w in weights.items():
            assert (w[~masks[name]] == 0).all()
            for v in opt.state[w].values():
                if torch.is_tensor(v) and v.shape == w.shape:
                    assert (v[~masks[name]] == 0).all()


def test_prunable_weights_selection():

    class Net(nn.Module):

        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 4, 3)
            self.bn = nn.BatchNorm2d(4)
            self.attn = nn.MultiheadAttention(4, 2)
            self.fc = nn.Linear(4, 2)
            self.tied = self.fc  # shared module: listed once

    weights = prunable_weights(Net())
    assert list(weights) == [
        'stem.weight', 'attn.in_proj_weight', 'attn.out_proj.weight',
        'fc.weight'
    ]
    weights = prunable_weights(Net(), exclude=[r'^stem\.', 'attn'])
    assert list(weights) == ['fc.weight']
    assert not prunable_weights(nn.Sequential(nn.BatchNorm1d(3)))


def test_schedules():
    assert art_lambda(0, 5e-6, 1.05) == 5e-6
    assert math.isclose(art_lambda(40, 5e-6, 1.05), 5e-6 * 1.05**40)
    with pytest.raises(ValueError):
        art_lambda(-1, 1e-3, 1.1)
    assert gmp_sparsity(3, 5, 15, 0.9) == 0.0
    assert gmp_sparsity(5, 5, 15, 0.9, initial=0.1) == pytest.approx(0.1)
    assert gmp_sparsity(10, 5, 15, 0.9) == pytest.approx(0.9 - 0.9 * 0.125)
    assert gmp_sparsity(15, 5, 15, 0.9) == 0.9
    assert gmp_sparsity(99, 5, 15, 0.9) == 0.9
    values = [gmp_sparsity(t, 5, 15, 0.9) for t in range(5, 16)]
    assert all(a < b for a, b in zip(values, values[1:]))
    assert step_decay_factor(9, [10, 15], 0.1) == 1.0
    assert step_decay_factor(10, [15, 10], 0.1) == pytest.approx(0.1)
    assert step_decay_factor(20, [10, 15], 0.1) == pytest.approx(0.01)


def test_sliding_window_semantics():
    """Window of 3 (buffer 1); best = middle entry when the mean improves
    (the last one while the window fills up); stop on best mean > dense."""
    win = SlidingWindow(buffer=1)
    assert win.update(0, 50.0) and win.best['step'] == 0
    assert win.update(1, 60.0) and win.best['step'] == 1
    assert win.best['mean'] == 55.0
    assert win.update(2, 70.0) and win.best['step'] == 1
    assert win.update(3, 65.0)  # window [60, 70, 65]
    assert win.best == dict(step=2, score=70.0, mean=65.0)
    assert not win.update(4, 20.0)  # mean drops: best unchanged
    assert win.best['step'] == 2
    assert win.should_stop(64.9) and not win.should_stop(65.0)
    clone = SlidingWindow(buffer=1)
    clone.load_state_dict(win.state_dict())
    assert clone.state_dict() == win.state_dict()
    with pytest.raises(ValueError, match='buffer mismatch'):
        SlidingWindow(buffer=2).load_state_dict(win.state_dict())
    with pytest.raises(ValueError, match='buffer'):
        SlidingWindow(buffer=-1)
    with pytest.raises(ValueError, match='finite'):
        win.update(5, float('nan'))


def test_inflection_constant():
    assert math.isclose(HS_INFLECTION, 0.6585, abs_tol=1e-4)
    # sech² has its inflection point where tanh = 1/sqrt(3)
    x = torch.tensor(HS_INFLECTION, dtype=torch.float64, requires_grad=True)
    sech2 = 1 - torch.tanh(x)**2
    (d1, ) = torch.autograd.grad(sech2, x, create_graph=True)
    (d2, ) = torch.autograd.grad(d1, x)
    assert abs(float(d2)) < 1e-12
