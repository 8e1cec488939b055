"""Plain-torch parts of the ART hooks, without a runner: the criterion's
scoring pass leaves the model and the random stream as they were, masked
training masks gradients in backward, rollback snapshots restore exactly,
and the checkpoint state keeps its keys."""
from collections import OrderedDict

import pytest
import torch
import torch.nn as nn

from mmsparse.art import (ARTController, CriterionScores, MaskedTraining,
                          SnapshotWindow, global_magnitude_masks, pack_masks,
                          prunable_weights, pruned_snapshot, restore_snapshot,
                          unpack_masks)
from mmsparse.engine.hooks import ARTHook


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Dropout(0.5),
                         nn.Linear(6, 2))


def _weight_sum(model, data):
    """A 'loss' that runs the model (BN statistics, dropout draws) and is
    the sum of the current weights."""
    model(data['inputs'])
    total = sum(float(m.weight.sum()) for m in (model[0], model[3]))
    return total, 1.0


@pytest.mark.parametrize('training', [True, False])
def test_scoring_pass_leaves_model_and_random_stream_untouched(training):
    model = _net().train(training)
    weights = prunable_weights(model)
    masks = global_magnitude_masks(weights, 0.5)
    before = {n: w.detach().clone() for n, w in weights.items()}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    batches = [dict(inputs=torch.randn(8, 4)) for _ in range(5)]
    rng = torch.get_rng_state()
    scores = CriterionScores('auto', dense_reference='eval')
    reduced = []
    dense, pruned = scores.evaluate(model, weights, masks, batches, 3,
                                    _weight_sum, reduced.append)
    assert scores.resolved == 'loss' and len(reduced) == 1
    assert reduced[0][[1, 3]].tolist() == [3.0, 3.0]  # max_batches
    assert dense == pytest.approx(-sum(float(w.sum()) for w in before.values()))
    assert pruned == pytest.approx(
        -sum(float((w * masks[n]).sum()) for n, w in before.items()))
    assert torch.equal(torch.get_rng_state(), rng)
    assert model.training is training
    for name, weight in weights.items():
        assert weight is dict(model.named_parameters())[name]
        assert torch.equal(weight, before[name])
    for name, buf in model.named_buffers():
        assert torch.equal(buf, buffers[name]), name


def test_dense_reference_train_uses_the_running_score_once():
    model = _net()
    weights = prunable_weights(model)
    masks = global_magnitude_masks(weights, 0.5)
    scores = CriterionScores('loss', dense_reference='train', owner='X')
    scores.resolve({})
    for loss in (3.0, 5.0):
        scores.add_train_step(dict(loss=loss + 1.0, loss_art_reg=1.0))
    batches = [dict(inputs=torch.randn(8, 4))]
    dense, _ = scores.evaluate(model, weights, masks, batches, None,
                               _weight_sum, lambda t: None, rank=0)
    assert dense == -4.0 and scores.running == [0.0, 0.0]
    with pytest.raises(RuntimeError, match='^X: no batch to score'):
        scores.evaluate(model, weights, masks, [], None, _weight_sum,
                        lambda t: None, rank=0)
    with pytest.raises(ValueError, match='^X: the train step returned no'):
        scores.add_train_step({})


def test_masked_training_masks_gradients_in_backward():
    model = _net()
    weights = prunable_weights(model)
    masks = global_magnitude_masks(weights, 0.6)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    training = MaskedTraining('Owner')
    training.bind(weights)
    synced = []
    training.install(masks, [opt], reset=False, sync=synced.append)
    assert len(synced) == len(weights)
    assert training.sparsity == pytest.approx(0.6, abs=0.02)
    model(torch.randn(8, 4)).sum().backward()
    for name, weight in weights.items():
        # zero before any optimizer step: masked in backward
        assert (weight.grad[~masks[name]] == 0).all()
        assert (weight[~masks[name]] == 0).all()
    opt.step()
    training.enforce([opt])
    for name, weight in weights.items():
        assert (weight[~masks[name]] == 0).all()
        assert (opt.state[weight]['exp_avg'][~masks[name]] == 0).all()
    state = training.state_dict()
    assert all(torch.equal(state[n], masks[n]) for n in masks)
    with pytest.raises(ValueError, match='^Owner: the masks do not match'):
        training.install(dict(list(masks.items())[:1]), [opt], reset=False)
    bad = OrderedDict((n, m.flatten()) for n, m in masks.items())
    with pytest.raises(ValueError, match='^mask of 0.weight has shape'):
        training.install(bad, [opt], reset=False)
    training.remove_hooks()
    model.zero_grad()
    model(torch.randn(8, 4)).sum().backward()
    assert any((w.grad[~masks[n]] != 0).any() for n, w in weights.items())


def test_snapshot_restores_the_pruned_model_exactly():
    model = _net()
    weights = prunable_weights(model)
    masks = global_magnitude_masks(weights, 0.7)
    snap = pruned_snapshot(model.state_dict(), 4, masks)
    state, restored = restore_snapshot(snap)
    assert snap['step'] == 4
    for key, value in model.state_dict().items():
        if key in masks:
            expect = value.masked_fill(~masks[key], 0)
            assert torch.equal(state[key], expect)
            assert not torch.signbit(state[key][~masks[key]]).any()  # +0.0
            assert torch.equal(restored[key], masks[key])
        else:
            assert torch.equal(state[key], value), key
    # masks of checkpoints before the packed format load as they are
    legacy = unpack_masks(OrderedDict((k, v.float()) for k, v in masks.items()))
    assert all(torch.equal(legacy[k], masks[k]) for k in masks)
    odd = {'x': torch.rand(3, 5, 7) > 0.5}
    assert torch.equal(unpack_masks(pack_masks(odd))['x'], odd['x'])


def test_snapshot_window_keeps_what_the_window_can_roll_back_to():
    window = SnapshotWindow(buffer=1)
    for step in range(4):
        window.add(dict(step=step), best_step=step - 1 if step else 0)
    assert [s['step'] for s in window.snapshots] == [2, 3]
    assert window.best['step'] == 2
    other = SnapshotWindow(buffer=1)
    other.load_state_dict(window.state_dict())
    assert other.state_dict() == window.state_dict()
    window.clear()
    assert window.state_dict() == dict(snapshots=[], best_step=None,
                                       best_snapshot=None)


def test_checkpoint_state_keeps_its_keys():
    """The keys of the ART checkpoint state (resume of older checkpoints)."""
    state = ARTHook(target_sparsity=0.9).state_dict()
    assert set(state) == {
        'masks', 'switch_unit', 'base_lrs', 'phase', 'art_step', 'art_begin',
        'resolved_criterion', 'running', 'window', 'history', 'val_history',
        'switch_info', 'scale', 'scale_age', 'snapshots', 'best_step',
        'best_snapshot', 'config'
    }
    controller = ARTController(0.8)
    with pytest.raises(ValueError, match='^ARTHook: the checkpoint was '
                       'trained with target_sparsity=0.9, the config says 0.8'):
        controller.load_state_dict(state)
