"""Real Runner runs of the baselines: one-shot + fine-tune and GMP."""
import pytest
import torch
from art_helpers import get_hook, tiny_cfg, train, unwrap

from mmsparse.art import gmp_sparsity, num_pruned, prunable_weights
from mmsparse.engine.hooks import (GradualMagnitudePruningHook,
                                   OneShotMagnitudePruningHook)


def _sparsity_per_iter(runner):
    values, _ = runner.message_hub.get_scalar('train/sparsity').data
    return [round(float(v), 6) for v in values]


def test_oneshot_prunes_once_and_keeps_zeros_with_adamw(tmp_path):
    hook = dict(
        type='OneShotMagnitudePruningHook',
        target_sparsity=0.9,
        prune_at=2,
        plot=False)
    runner = train(
        tiny_cfg(tmp_path, [hook], max_epochs=4, ckpt_interval=4,
                 optimizer=dict(type='AdamW', lr=1e-2, weight_decay=0.05)))
    oneshot = get_hook(runner, OneShotMagnitudePruningHook)
    weights = prunable_weights(unwrap(runner.model))
    total = sum(w.numel() for w in weights.values())
    expect = num_pruned(total, 0.9) / total
    assert _sparsity_per_iter(runner) == [0.0] * 8 + [round(expect, 6)] * 8
    optimizer = runner.optim_wrapper.optimizer
    for name, mask in oneshot.masks.items():
        assert (weights[name][~mask] == 0).all()
        for value in optimizer.state[weights[name]].values():
            if torch.is_tensor(value) and value.shape == mask.shape:
                assert (value[~mask] == 0).all()


def test_gmp_cubic_schedule(tmp_path):
    hook = dict(
        type='GradualMagnitudePruningHook',
        target_sparsity=0.8,
        begin=1,
        end=4,
        interval=1,
        plot=False)
    runner = train(tiny_cfg(tmp_path, [hook], max_epochs=5, ckpt_interval=5))
    gmp = get_hook(runner, GradualMagnitudePruningHook)
    total = sum(m.numel() for m in gmp.masks.values())
    per_epoch = _sparsity_per_iter(runner)[3::4]  # last iteration of epochs
    # pruning at the end of epochs 1..4: epoch e trains under s(e - 1)
    expect = [0.0] + [
        round(num_pruned(total, gmp_sparsity(e, 1, 4, 0.8)) / total, 6)
        for e in (1, 2, 3, 4)
    ]
    assert per_epoch == expect
    assert gmp.switch_unit == 4


@pytest.mark.parametrize('cls,kwargs,match', [
    (OneShotMagnitudePruningHook, dict(target_sparsity=1.0, prune_at=1),
     'target_sparsity'),
    (OneShotMagnitudePruningHook, dict(target_sparsity=0.5, prune_at=-1),
     'prune_at'),
    (GradualMagnitudePruningHook, dict(target_sparsity=0.5, begin=3, end=3),
     'end must be'),
    (GradualMagnitudePruningHook,
     dict(target_sparsity=0.5, begin=0, end=3, initial_sparsity=0.6),
     'initial_sparsity'),
])
def test_bad_values(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_oneshot_prune_at_zero_and_resume(tmp_path):
    """prune_at=0 prunes before the first step; a resume restores the mask
    and continues identically."""
    hook = dict(
        type='OneShotMagnitudePruningHook',
        target_sparsity=0.8,
        prune_at=0,
        plot=False)
    cfg = tiny_cfg(tmp_path / 'full', [hook], max_epochs=3)
    full = train(cfg)
    per_iter = _sparsity_per_iter(full)
    assert len(set(per_iter)) == 1 and per_iter[0] > 0.79
    resumed = train(cfg, work_dir=str(tmp_path / 'resumed'), resume=True,
                    load_from=str(tmp_path / 'full' / 'epoch_2.pth'))
    a = get_hook(full, OneShotMagnitudePruningHook)
    b = get_hook(resumed, OneShotMagnitudePruningHook)
    assert a.masks.keys() == b.masks.keys()
    assert all(torch.equal(a.masks[k], b.masks[k]) for k in a.masks)
    wa = prunable_weights(unwrap(full.model))
    wb = prunable_weights(unwrap(resumed.model))
    for name, mask in b.masks.items():
        assert torch.equal(wa[name], wb[name])
        assert (wb[name][~mask] == 0).all()
