"""Guards of the pruning hooks: class-named errors, frozen and default
exclusions, per-layer floor and collapse warning, the regularizer reaching
the loss, readable regularizer logs, compact ART checkpoints, RNG resume."""
import glob
import io
import os.path as osp

import pytest
import torch
import torch.nn as nn
from art_helpers import build_runner, get_hook, tiny_cfg, train, unwrap
from mmpretrain.models import ImageClassifier

from mmsparse.art import (DEFAULT_EXCLUDE, global_magnitude_masks,
                          prunable_weights)
from mmsparse.engine.hooks import (ARTHook, GradualMagnitudePruningHook,
                                   OneShotMagnitudePruningHook)
from mmsparse.registry import MODELS


def _log(work_dir) -> str:
    return open(glob.glob(osp.join(work_dir, '*', '*.log'))[0]).read()


@pytest.mark.parametrize('cls,kwargs,key', [
    (ARTHook, dict(target_sparsity=1.5), 'target_sparsity'),
    (ARTHook, dict(target_sparsity=0.9, regularizer='l0'), 'regularizer'),
    (ARTHook, dict(target_sparsity=0.9, buffer=-1), 'buffer'),
    (ARTHook, dict(target_sparsity=0.9, finetune_lr_gamma=2), 'finetune'),
    (ARTHook, dict(target_sparsity=0.9, exclude='conv'), 'exclude'),
    (ARTHook, dict(target_sparsity=0.9, min_layer_density=1), 'min_layer'),
    (OneShotMagnitudePruningHook, dict(target_sparsity=0, prune_at=1),
     'target_sparsity'),
    (OneShotMagnitudePruningHook, dict(target_sparsity=0.5, prune_at=-1),
     'prune_at'),
    (GradualMagnitudePruningHook, dict(target_sparsity=0.9, begin=2, end=1),
     'end'),
    (GradualMagnitudePruningHook,
     dict(target_sparsity=0.9, begin=0, end=2, warn_layer_sparsity=2),
     'warn_layer_sparsity'),
])
def test_construction_errors_start_with_class_name(cls, kwargs, key):
    with pytest.raises((ValueError, TypeError)) as err:
        cls(**kwargs)
    assert str(err.value).startswith(f'{cls.__name__}: {key}')


def test_default_exclusions_for_vit_models():
    model = nn.Module()
    model.patch_embed = nn.Module()
    model.patch_embed.proj = nn.Conv2d(3, 8, 4)
    model.pruner = nn.Module()
    model.pruner.selector = nn.Linear(8, 2)
    model.blocks = nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8))
    model.head = nn.Linear(8, 3)
    skipped = {}
    default = prunable_weights(model, DEFAULT_EXCLUDE, skipped=skipped)
    assert list(default) == ['blocks.0.weight', 'head.weight']
    assert skipped['excluded'] == 3 * 8 * 16 + 16
    assert len(prunable_weights(model, [])) == 4
    model.head.weight.requires_grad_(False)
    assert list(prunable_weights(model, DEFAULT_EXCLUDE,
                                 include_frozen=False,
                                 skipped=skipped)) == ['blocks.0.weight']
    assert skipped['frozen'] == 24


def test_layer_density_floor_keeps_global_sparsity():
    g = torch.Generator().manual_seed(0)
    weights = dict(small=torch.randn(50, generator=g) * 1e-3,
                   big=torch.randn(1000, generator=g))
    plain = global_magnitude_masks(weights, 0.9)
    assert int(plain['small'].sum()) == 0  # collapses without a floor
    masks = global_magnitude_masks(weights, 0.9, min_density=0.1)
    assert int(masks['small'].sum()) == 5
    assert sum(int(m.sum()) for m in masks.values()) == 105
    # the kept small weights are its largest ones
    kept = weights['small'].abs()[masks['small']]
    assert kept.min() >= weights['small'].abs()[~masks['small']].max()
    with pytest.raises(ValueError, match='min_layer_density'):
        global_magnitude_masks(weights, 0.99, min_density=0.5)


def _freeze_first_conv(runner):
    first = next(iter(prunable_weights(unwrap(runner.model), [])))
    dict(unwrap(runner.model).named_parameters())[first].requires_grad_(False)
    return first


@pytest.mark.parametrize('include_frozen', [False, True])
def test_frozen_weights_excluded_by_default(tmp_path, include_frozen):
    hook = dict(type='OneShotMagnitudePruningHook', target_sparsity=0.5,
                prune_at=0, include_frozen=include_frozen, plot=False)
    runner = build_runner(tiny_cfg(tmp_path, [hook], max_epochs=1,
                                   ckpt_interval=1))
    frozen = _freeze_first_conv(runner)
    runner.train()
    oneshot = get_hook(runner, OneShotMagnitudePruningHook)
    assert (frozen in oneshot.masks) == include_frozen
    numel = dict(unwrap(runner.model).named_parameters())[frozen].numel()
    expect = 0 if include_frozen else numel
    assert f'{expect} frozen (requires_grad=False' in _log(tmp_path)


def test_floor_and_collapse_warning_in_a_run(tmp_path):
    hook = dict(type='OneShotMagnitudePruningHook', target_sparsity=0.95,
                prune_at=1, warn_layer_sparsity=0.9, plot=False)
    runner = train(tiny_cfg(tmp_path / 'a', [hook], max_epochs=2,
                            ckpt_interval=2))
    assert 'layer(s) pruned above 90%' in _log(tmp_path / 'a')
    hook.update(min_layer_density=0.03, warn_layer_sparsity=0.975)
    runner = train(tiny_cfg(tmp_path / 'b', [hook], max_epochs=2,
                            ckpt_interval=2))
    oneshot = get_hook(runner, OneShotMagnitudePruningHook)
    for mask in oneshot.masks.values():
        assert mask.float().mean() >= 0.03
    assert 'pruned above' not in _log(tmp_path / 'b')
    # an infeasible floor fails before training
    hook.update(min_layer_density=0.2)
    with pytest.raises(ValueError, match='^OneShotMagnitudePruningHook: '
                       'min_layer_density=0.2 keeps'):
        train(tiny_cfg(tmp_path / 'c', [hook], max_epochs=2))


@MODELS.register_module(name='ARTTestBypassModel', force=True)
class _BypassModel(ImageClassifier):
    """train_step computes the loss without forward(mode='loss')."""

    def train_step(self, data, optim_wrapper):
        with optim_wrapper.optim_context(self):
            data = self.data_preprocessor(data, True)
            losses = self.loss(**data)
        parsed, log_vars = self.parse_losses(losses)
        optim_wrapper.update_params(parsed)
        return log_vars


def test_regularizer_must_reach_the_loss(tmp_path):
    hook = dict(type='ARTHook', target_sparsity=0.9, plot=False)
    cfg = tiny_cfg(tmp_path, [hook], max_epochs=2)
    cfg['model']['type'] = 'ARTTestBypassModel'
    with pytest.raises(RuntimeError, match='did not reach the loss'):
        train(cfg)


@pytest.mark.parametrize('regularizer,key', [('hypersparse',
                                              'art_small_share'),
                                             ('l1', 'art_reg_value')])
def test_readable_regularizer_logs(tmp_path, regularizer, key):
    hook = dict(type='ARTHook', target_sparsity=0.9, regularizer=regularizer,
                lambda_init=1e-3, max_art_steps=1, stats_interval=2,
                plot=False)
    runner = train(tiny_cfg(tmp_path, [hook], max_epochs=2, ckpt_interval=2))
    hub = runner.message_hub
    grads, _ = hub.get_scalar('train/art_reg_grad').data
    values, _ = hub.get_scalar(f'train/{key}').data
    assert len(grads) == 2 and all(g > 0 for g in grads)
    if key == 'art_small_share':
        assert all(0 < v < 1 for v in values)
    assert key in _log(tmp_path) and 'art_reg_grad' in _log(tmp_path)


def _nbytes(obj) -> int:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.tell()


def test_art_checkpoint_snapshots_are_compact(tmp_path):
    """The window snapshots of an ART-phase checkpoint are stored sparse:
    the whole ART state is a fraction of the model, not up to 3 copies."""
    hook = dict(type='ARTHook', target_sparsity=0.95, lambda_init=1e-3,
                warmup=1, max_art_steps=3, dense_reference='eval',
                plot=False)
    train(tiny_cfg(tmp_path, [hook], max_epochs=5, widths=(32, 64)))
    ckpt = torch.load(osp.join(tmp_path, 'epoch_3.pth'), weights_only=False)
    state = ckpt['art_state']
    assert state['phase'] == 'art' and len(state['snapshots']) == 2
    ratio = _nbytes(state) / _nbytes(ckpt['state_dict'])
    assert ratio < 0.5, ratio


def _aug_cfg(work_dir, hook, **kwargs):
    """Random flips (numpy stream) and dropout in the head (torch stream)."""
    cfg = tiny_cfg(work_dir, [hook], **kwargs)
    cfg['train_dataloader']['dataset']['pipeline'] = [
        dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        dict(type='PackInputs')
    ]
    cfg['model']['head'] = dict(
        type='StackedLinearClsHead',
        num_classes=10,
        in_channels=16,
        mid_channels=[16],
        dropout_rate=0.3,
        loss=dict(type='CrossEntropyLoss'))
    return cfg


@pytest.mark.parametrize('loop', ['epoch', 'iter'])
def test_resume_continues_the_random_stream(tmp_path, loop):
    """With random augmentation (num_workers=0) and dropout a resumed run
    ends with the weights of the uninterrupted one (mmengine's replay of
    the first batches of an iteration-based run reproduces the data stream
    but not the training's own draws)."""
    hook = dict(type='OneShotMagnitudePruningHook', target_sparsity=0.5,
                prune_at=1 if loop == 'epoch' else 4,
                by_epoch=loop == 'epoch', plot=False)
    if loop == 'epoch':
        kwargs = dict(max_epochs=3)
    else:
        kwargs = dict(max_iters=10, ckpt_interval=5)
    cfg = _aug_cfg(tmp_path / 'full', hook, **kwargs)
    full = train(cfg)
    ckpt = osp.join(tmp_path, 'full',
                    'epoch_2.pth' if loop == 'epoch' else 'iter_5.pth')
    resumed = train(cfg, work_dir=str(tmp_path / 'resumed'), resume=True,
                    load_from=ckpt)
    a = dict(unwrap(full.model).named_parameters())
    b = dict(unwrap(resumed.model).named_parameters())
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize('clip_regularizer', [True, False])
def test_clip_regularizer(tmp_path, clip_regularizer):
    """With clipping at a negligible norm the task gradient vanishes; the
    L2 term λ·Σw² then moves the weights only when it is added after the
    clip: w ← w·(1 − 2·lr·λ) per iteration."""
    hook = dict(type='ARTHook', target_sparsity=0.5, regularizer='l2',
                by_epoch=False, interval=4, eval_batches=1, lambda_init=0.5,
                clip_regularizer=clip_regularizer, plot=False)
    cfg = tiny_cfg(tmp_path, [hook], max_iters=4, ckpt_interval=4,
                   optimizer=dict(type='SGD', lr=0.1))
    cfg['optim_wrapper']['clip_grad'] = dict(max_norm=1e-12)
    runner = build_runner(cfg)
    before = {k: v.detach().clone()
              for k, v in prunable_weights(unwrap(runner.model)).items()}
    runner.train()
    art = get_hook(runner, ARTHook)
    assert art.phase == 'finetune'
    after = prunable_weights(unwrap(runner.model))
    factor = (1 - 2 * 0.1 * 0.5)**4 if not clip_regularizer else 1.0
    for name, mask in art.masks.items():
        torch.testing.assert_close(after[name][mask],
                                   before[name][mask] * factor,
                                   rtol=1e-5, atol=1e-7)


def test_quantile_interval_reuses_the_scale_and_logs_its_drift(tmp_path):
    """quantile_interval=3: the exact κ-quantile every 3rd ART iteration,
    its relative change logged; the run is close to the exact one."""
    base = dict(type='ARTHook', target_sparsity=0.9, lambda_init=1e-2,
                by_epoch=False, interval=6, eval_batches=1, max_art_steps=1,
                stats_interval=1, plot=False)
    runs = {}
    for q in (1, 3):
        hook = dict(base, quantile_interval=q)
        runs[q] = train(tiny_cfg(tmp_path / str(q), [hook], max_iters=7,
                                 ckpt_interval=7))
    drift, _ = runs[3].message_hub.get_scalar('train/art_scale_drift').data
    assert 0 < max(drift) < 0.2
    assert runs[1].message_hub.log_scalars.get('train/art_scale_drift') \
        is None
    a = dict(unwrap(runs[1].model).named_parameters())
    b = dict(unwrap(runs[3].model).named_parameters())
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0.05, atol=1e-3)
