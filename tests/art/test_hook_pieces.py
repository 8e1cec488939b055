"""The plain-torch pieces the pruning hooks call: MaskedPruning (masks,
no-regrowth, switch, fine-tune lr, state), GMP's step rule, ART's reports
and the clip warning, the run's PNG names (messages as the hooks log them)."""
import math
import os.path as osp

import pytest
import torch
from torch import nn

from mmsparse.art import (NEVER_PRUNED, ARTController, ClipWatch,
                          MaskedPruning, RunPlots, event_line, gmp_sparsity,
                          gmp_step_sparsity, prunable_weights, settings_line,
                          step_line, step_scalars, switch_line)


def _pruning(**kwargs):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    pruning = MaskedPruning(owner='GMPTest', **kwargs)
    pruning.weights = prunable_weights(model, [])
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    pruning.bind([opt])
    return pruning, opt


def test_masks_shrink_without_regrowth_and_the_switch_fixes_them():
    pruning, opt = _pruning(warn_layer_sparsity=0.5,
                            finetune_lr_milestones=[2])
    assert pruning.masks is None and pruning.sparsity == 0.0
    assert pruning.summary() is None
    pruning.install(pruning.global_masks(0.5), [opt], reset=False)
    first = {n: m.clone() for n, m in pruning.masks.items()}
    # the weights change: the new global mask alone would regrow some
    with torch.no_grad():
        for w in pruning.weights.values():
            w.copy_(torch.randn_like(w))
    shrunk = pruning.shrunk_masks(0.6)
    fresh = pruning.global_masks(0.6)
    # what was pruned stays pruned, though the fresh mask would regrow it
    assert all((m <= first[n]).all() for n, m in shrunk.items())
    assert any((fresh[n] & ~first[n]).any() for n in first)
    assert all(torch.equal(m, fresh[n] & first[n])
               for n, m in shrunk.items())
    warning = pruning.switch_to_finetune(3, shrunk, [opt], reset=True)
    assert pruning.switch_unit == 3 and not opt.state
    assert warning == pruning.guard.collapse_warning(pruning.masks)
    assert warning.startswith('2 layer(s) pruned above 50%: 0.weight (')
    for name, w in pruning.weights.items():
        assert (w[~pruning.masks[name]] == 0).all()
    # lr: the rate at the switch, then x0.1 from 2 units after it
    pruning.apply_finetune_lr([opt], 4)
    assert opt.param_groups[0]['lr'] == pytest.approx(0.1)
    pruning.apply_finetune_lr([opt], 5)
    assert opt.param_groups[0]['lr'] == pytest.approx(0.01)
    total = sum(m.numel() for m in pruning.masks.values())
    assert pruning.summary() == (f'final sparsity {100 * pruning.sparsity:.2f}'
                                 f'% of {total} prunable weights')
    # the checkpoint state keeps its keys and restores the masks
    state = pruning.state_dict()
    assert list(state) == ['masks', 'switch_unit', 'base_lrs']
    other, other_opt = _pruning()
    other.load_state_dict(state)
    other.bind([other_opt])
    assert other.switch_unit == 3 and other.finetune_lr.base_lrs == [[0.1]]
    for name, w in other.weights.items():
        assert (w[~state['masks'][name]] == 0).all()


def test_masked_pruning_checks_and_device():
    assert MaskedPruning().device is None
    pruning, _ = _pruning(finetune_lr_milestones=[1])
    assert pruning.device == torch.device('cpu')
    pruning.check_schedulers(False)
    with pytest.raises(ValueError, match=r'^finetune_lr_milestones sets the '
                       r'learning rate itself; remove param_scheduler'):
        pruning.check_schedulers(True)
    MaskedPruning().check_schedulers(True)  # no milestones: nothing to check
    floor, _ = _pruning(min_layer_density=0.5)
    with pytest.raises(ValueError, match='^GMPTest: min_layer_density=0.5'):
        floor.check_floor(0.9)
    with pytest.raises(ValueError, match='finetune_lr_milestones'):
        MaskedPruning(finetune_lr_milestones=[0], min_layer_density=2)


def test_gmp_step_sparsity_prunes_at_the_schedule_points_only():
    steps = {t: gmp_step_sparsity(t, 2, 10, 3, 0.8) for t in range(13)}
    assert [t for t, s in steps.items() if s is not None] == [5, 8, 10]
    assert steps[10] == 0.8
    assert steps[5] == gmp_sparsity(5, 2, 10, 0.8)
    # t_0 has sparsity s_i: 0 prunes nothing, a positive s_i prunes
    assert gmp_step_sparsity(2, 2, 10, 3, 0.8) is None
    assert gmp_step_sparsity(2, 2, 10, 3, 0.8, 0.1) == pytest.approx(0.1)


def test_art_reports_read_as_the_hook_logs_them():
    record = dict(step=2, unit=7, dense=0.8, pruned=0.75, window_mean=0.7,
                  best_mean=0.72, best_step=1, hs_gain=1.5, **{'lambda': 2e-5})
    assert step_line(record, 'accuracy', 'epoch', 7, 0.9) == (
        'step 2 (epoch 7): λ=2e-05 dense accuracy=0.8000 pruned@90% '
        'accuracy=0.7500 window mean=0.7000 best mean=0.7200 (step 1) '
        'hs_gain=1.500')
    assert step_scalars(record, 'loss') == {
        'art/lambda': 2e-5, 'art/dense_loss': 0.8, 'art/pruned_loss': 0.75,
        'art/window_mean_loss': 0.7, 'art/hs_gain': 1.5}
    assert settings_line(ARTController(0.9, warmup=1)) == (
        'phase warmup, κ=0.9, regularizer hypersparse, λ0=5e-06, η=1.05')
    assert event_line('art_begins', 2, 'epoch', 1e-3, None) == (
        'warm-up done after 2 epochs; ART starts (λ0=0.001)')
    assert event_line('finetune_done', 9, 'iter', 1e-3, 4) == (
        '4 fine-tune iters done; stopping the run')
    with pytest.raises(ValueError, match='art_step'):
        event_line('art_step', 2, 'epoch', 1e-3, None)
    assert switch_line('iter', 16, 'max_art_steps', 0, 0.96965) == (
        'switch to fine-tuning after iter 16 (max_art_steps); pruned model '
        'of ART step 0, sparsity 96.965%, masks fixed')
    assert NEVER_PRUNED.startswith('the run ended in the ART phase')


def test_clip_watch_warns_once_and_only_above_the_norm():
    assert ClipWatch().check(1e9) is None  # no clipping
    watch = ClipWatch(0.05)
    assert watch.check(0.05) is None and watch.check(math.nan) is None
    assert watch.check(0.0549) == (
        'λ·‖∇R‖ = 0.0549 exceeds the gradient clipping norm 0.05: clipping '
        "now scales the task gradient down with the regularizer's")
    assert watch.check(1.0) is None


def test_controller_keeps_the_validation_history_in_its_state():
    art = ARTController(0.8)
    art.add_validation(1, None)
    art.add_validation(2, {'accuracy/top1': 50, 'other': 1})
    assert art.val_history == [dict(unit=2, key='accuracy/top1', value=50.0)]
    state = art.state_dict()
    assert list(state)[-1] == 'val_history'
    other = ARTController(0.8)
    other.load_state_dict(state)
    assert other.val_history == art.val_history


def test_run_plots_write_the_named_pngs(tmp_path):
    pruning, opt = _pruning()
    pruning.install(pruning.global_masks(0.5), [opt], reset=False)
    plots = RunPlots(str(tmp_path / 'plots'), 'gmp')
    plots.masks('final', pruning.masks, pruning.magnitudes(), 0.1)
    plots.art_curves([], 'loss', 'iter')  # no ART steps: no plot
    history = [dict(unit=1, dense=0.5, pruned=0.4, window_mean=0.4,
                    **{'lambda': 1e-3})]
    plots.art_curves(history, 'accuracy', 'epoch', switch=1,
                     val_history=[dict(unit=1, key='acc', value=0.3)])
    names = sorted(p.name for p in (tmp_path / 'plots').iterdir())
    assert names == ['gmp_curves.png', 'gmp_layer_sparsity_final.png',
                     'gmp_weight_hist_final.png']
    assert plots.path('x') == osp.join(str(tmp_path / 'plots'), 'gmp_x.png')
