"""Real Runner runs of ARTHook: phases, resume, masked fine-tuning, errors."""
import glob
import math
import os.path as osp

import pytest
import torch
from art_helpers import (get_hook, hook_summary, tiny_cfg, train, unwrap,
                         weights_of)
from mmengine.model import BaseModel
from mmengine.registry import DefaultScope

from mmsparse.art import prunable_weights
from mmsparse.engine.hooks import ARTHook
from mmsparse.registry import HOOKS, MODELS


def _prunable_zeros(runner):
    weights = prunable_weights(unwrap(runner.model))
    zeros = sum(int((w == 0).sum()) for w in weights.values())
    total = sum(w.numel() for w in weights.values())
    return zeros, total


def _phases_per_iter(runner):
    values, _ = runner.message_hub.get_scalar('train/art_phase').data
    return [int(v) for v in values]


def test_phases_warmup_art_finetune_by_criterion(tmp_path):
    """warm-up (1 epoch) -> ART -> fine-tune when the pruned copy beats the
    running training accuracy; masks fixed afterwards; plots written."""
    hook = dict(
        type='ARTHook',
        target_sparsity=0.3,
        lambda_init=1e-3,
        eta=2.0,
        warmup=1,
        min_finetune=1)
    runner = train(tiny_cfg(tmp_path, [hook], max_epochs=6, val=True))
    art = get_hook(runner, ARTHook)
    assert art.phase == 'finetune'
    assert art.switch_info['reason'] == 'criterion'
    assert art.resolved_criterion == 'accuracy'
    steps = len(art.history)
    assert art.switch_unit == 1 + steps
    # λ_e = λ0 · η^e over the ART steps
    for rec in art.history:
        assert math.isclose(rec['lambda'], 1e-3 * 2.0**rec['step'])
        assert rec['unit'] == 2 + rec['step']
    # the stop rule: best window mean > dense training accuracy
    last = art.history[-1]
    assert last['best_mean'] > last['dense']
    assert all(r['best_mean'] <= r['dense'] for r in art.history[:-1])
    # one phase code per iteration: 4 warm-up, 4 per ART step, then 2
    per_iter = _phases_per_iter(runner)
    assert per_iter == [0] * 4 + [1] * (4 * steps) + [2] * (
        4 * (6 - 1 - steps))
    zeros, total = _prunable_zeros(runner)
    assert zeros >= round(0.3 * total)
    assert math.isclose(art.sparsity, round(0.3 * total) / total)
    for name in ('art_curves', 'art_layer_sparsity_switch',
                 'art_weight_hist_switch'):
        assert osp.getsize(osp.join(tmp_path, 'plots', f'{name}.png')) > 1000
    logs = open(glob.glob(osp.join(tmp_path, '*', '*.log'))[0]).read()
    assert 'ARTHook [art] step 0' in logs and 'switch to fine-tuning' in logs
    assert 'art_lambda' in logs and 'loss_art_reg' in logs


@pytest.mark.parametrize('kwargs,reason,unit', [
    (dict(max_art_steps=2), 'max_art_steps', 4),
    (dict(min_finetune=2), 'min_finetune', 3),
])
def test_forced_switch(tmp_path, kwargs, reason, unit):
    """After 2 warm-up epochs the dense model (~60-80 %) beats its 97 %
    pruned copy (~10 %) by far: only the forcing rules can end ART."""
    hook = dict(
        type='ARTHook',
        target_sparsity=0.97,
        regularizer='l1',
        dense_reference='eval',
        warmup=2,
        plot=False,
        **kwargs)
    runner = train(
        tiny_cfg(tmp_path, [hook], max_epochs=5, ckpt_interval=5,
                 n_train=240))
    art = get_hook(runner, ARTHook)
    assert art.switch_info['reason'] == reason
    assert art.switch_unit == unit
    # the fine-tuned model is the best window model, pruned to exactly 97 %
    zeros, total = _prunable_zeros(runner)
    assert zeros >= round(0.97 * total)
    assert art.switch_info['model_step'] == art.history[-1]['best_step']


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
    """7 epochs: 2 warm-up, 3 ART steps (forced: the 97 % copy stays far
    below the dense model), 2 fine-tune; a checkpoint after every epoch."""
    work = tmp_path_factory.mktemp('art_full')
    hook = dict(
        type='ARTHook',
        target_sparsity=0.97,
        lambda_init=1e-3,
        eta=1.5,
        warmup=2,
        max_art_steps=3,
        plot=False)
    cfg = tiny_cfg(work, [hook], max_epochs=7, n_train=240)
    runner = train(cfg)
    return cfg, runner, work


@pytest.mark.parametrize('resume_epoch', [3, 4, 6])
def test_resume_equals_uninterrupted(uninterrupted, tmp_path, resume_epoch):
    """Resume during ART (window partly / fully filled) and during
    fine-tuning: λ, phase, window, history, mask and weights are identical
    to the uninterrupted run, and pruned weights stay exactly zero."""
    cfg, full, work = uninterrupted
    full_hook = get_hook(full, ARTHook)
    assert full_hook.switch_info['reason'] == 'max_art_steps'
    ckpt = osp.join(work, f'epoch_{resume_epoch}.pth')
    state = torch.load(ckpt, map_location='cpu', weights_only=False)
    phase = 'art' if resume_epoch < 5 else 'finetune'
    assert state['art_state']['phase'] == phase
    resumed = train(cfg, work_dir=str(tmp_path), resume=True, load_from=ckpt)
    hook = get_hook(resumed, ARTHook)
    assert hook_summary(hook) == hook_summary(full_hook)
    for key, value in weights_of(full).items():
        assert torch.equal(weights_of(resumed)[key], value), key
    weights = prunable_weights(unwrap(resumed.model))
    for name, mask in hook.masks.items():
        assert (weights[name][~mask] == 0).all()


def test_load_from_without_resume_starts_afresh(uninterrupted, tmp_path):
    cfg, _, work = uninterrupted
    runner = train(
        cfg, work_dir=str(tmp_path), load_from=osp.join(work, 'epoch_6.pth'),
        resume=False)
    art = get_hook(runner, ARTHook)
    assert art.history[0]['unit'] == 3  # warm-up + ART again from epoch 0


def test_iteration_based_loss_criterion(tmp_path):
    """VIS-style run: IterBasedTrainLoop, an ART step every 2 iterations on a
    bounded set of 2 training batches, loss criterion."""
    hook = dict(
        type='ARTHook',
        target_sparsity=0.97,
        by_epoch=False,
        warmup=10,
        interval=2,
        eval_batches=2,
        criterion='loss',
        max_art_steps=3,
        lambda_init=1e-3,
        eta=1.5,
        plot=False)
    runner = train(
        tiny_cfg(tmp_path, [hook], max_iters=20, ckpt_interval=20,
                 n_train=240))
    art = get_hook(runner, ARTHook)
    assert art.resolved_criterion == 'loss'
    assert [r['unit'] for r in art.history] == [12, 14, 16]
    assert art.switch_unit == 16 and art.phase == 'finetune'
    assert art.switch_info['reason'] == 'max_art_steps'
    # the 97 % copy is worse than the trained dense model
    assert all(r['pruned'] > r['dense'] > 0 for r in art.history)
    assert _phases_per_iter(runner) == [0] * 10 + [1] * 6 + [2] * 4
    zeros, total = _prunable_zeros(runner)
    assert zeros >= round(0.97 * total)


def test_finetune_lr_milestones(tmp_path):
    hook = dict(
        type='ARTHook',
        target_sparsity=0.5,
        max_art_steps=1,
        finetune_lr_milestones=[1, 2],
        finetune_lr_gamma=0.5,
        plot=False)
    runner = train(tiny_cfg(tmp_path, [hook], max_epochs=4, ckpt_interval=4))
    lrs, _ = runner.message_hub.get_scalar('train/lr').data
    # epoch 1 (ART) lr 0.1; fine-tune epochs 2, 3, 4: 0.1, 0.05, 0.025
    assert [round(float(v), 6) for v in lrs[::4]] == [0.1, 0.1, 0.05, 0.025]


@MODELS.register_module(name='ARTTestNoPrunableModel', force=True)
class _NoPrunableModel(BaseModel):
    """Only a free parameter and a norm layer: nothing ART could prune."""

    def __init__(self, **kwargs):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))
        self.norm = torch.nn.LayerNorm(4)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = torch.stack(inputs).float().mean()
        return dict(loss=(self.scale * x - 1)**2)


def test_bad_values_raise_at_construction():
    for kwargs, match in [
        (dict(target_sparsity=0.0), 'target_sparsity'),
        (dict(target_sparsity=1.0), 'target_sparsity'),
        (dict(target_sparsity=1.2), 'target_sparsity'),
        (dict(target_sparsity=0.9, eta=1.0), 'eta must be > 1'),
        (dict(target_sparsity=0.9, eta=0.5), 'eta must be > 1'),
        (dict(target_sparsity=0.9, regularizer='l0'), 'regularizer'),
        (dict(target_sparsity=0.9, lambda_init=0), 'lambda_init'),
        (dict(target_sparsity=0.9, criterion='map'), 'criterion'),
        (dict(target_sparsity=0.9, dense_reference='x'), 'dense_reference'),
        (dict(target_sparsity=0.9, warmup=-1), 'warmup'),
        (dict(target_sparsity=0.9, interval=0), 'interval'),
        (dict(target_sparsity=0.9, buffer=-1), 'buffer'),
        (dict(target_sparsity=0.9, finetune_lr_milestones=[0]),
         'finetune_lr_milestones'),
    ]:
        with pytest.raises(ValueError, match=match):
            ARTHook(**kwargs)


@pytest.mark.parametrize('cfg_kwargs,hook_kwargs,match', [
    (dict(widths=()), {}, None),
    (dict(model=True), {}, 'no prunable layers'),
    (dict(max_epochs=2), dict(warmup=2, min_finetune=1), 'exceed the run'),
    (dict(max_iters=4), dict(by_epoch=True), 'iteration-based'),
    (dict(max_iters=4), dict(by_epoch=False), 'eval_batches'),
    (dict(param_scheduler=dict(type='ConstantLR', factor=1.0)),
     dict(finetune_lr_milestones=[1]), 'param_scheduler'),
    # raised at the first ART iteration: the loss dict lacks the accuracy
    (dict(cal_acc=False), dict(criterion='accuracy'), 'cal_acc=True'),
])
def test_bad_run_raises_before_training(tmp_path, cfg_kwargs, hook_kwargs,
                                        match):
    hook = dict(type='ARTHook', target_sparsity=0.9, **hook_kwargs)
    if 'widths' in cfg_kwargs:
        # a model with no Conv/Linear: everything excluded
        hook['exclude'] = ['.*']
        cfg_kwargs = {}
        match = 'no prunable layers'
    model = cfg_kwargs.pop('model', None)
    cfg = tiny_cfg(tmp_path, [hook], **cfg_kwargs)
    if model:
        cfg['model'] = dict(type='ARTTestNoPrunableModel')
    with pytest.raises(ValueError, match=match):
        train(cfg)


@pytest.mark.parametrize('scope', ['mmdet', 'mmpretrain'])
def test_registered_under_both_scopes(scope):
    with DefaultScope.overwrite_default_scope(scope):
        for cfg in (dict(type='ARTHook', target_sparsity=0.9),
                    dict(type='OneShotMagnitudePruningHook',
                         target_sparsity=0.9, prune_at=1),
                    dict(type='GradualMagnitudePruningHook',
                         target_sparsity=0.9, begin=0, end=2)):
            hook = HOOKS.build(cfg)
            assert type(hook).__name__ == cfg['type']


def test_controller_settings_pass_through():
    """ARTHook hands every ARTController setting on by name (defaults are
    the controller's); hook settings go to the base hook; an unknown key
    names the hook and the allowed keys of both."""
    hook = ARTHook(0.8, lambda_init=1e-4, window_rule='best_middle',
                   quantile_interval=3, plot=False)
    assert hook.lambda_init == 1e-4 and not hook.plot
    assert hook.phases.window.rule == 'best_middle'
    assert hook.reg.quantile_interval == 3
    assert hook.art.owner == 'ARTHook'
    with pytest.raises(TypeError, match=r'^ARTHook: unknown setting.*'
                       r"\['lamda_init'\].*allowed: \[.*'lambda_init'.*"
                       r'BaseMaskedPruningHook.*plot_dir'):
        ARTHook(0.8, lamda_init=1e-4)
