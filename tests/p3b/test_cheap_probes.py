"""Cheap P3B probes: size, schedule of the probe window, batch subsets,
and a full pruning run with them."""
import copy

import pytest
import torch

from mmsparse.p3b import CheapProbeBank, P3BPruner, ProbeBank, non_block_params
from .toy_vit import ToyViT, train_steps


def _pruner(model, **kwargs):
    args = dict(num_classes=5, keep_ratio=0.5, start=0, sparse=6, final=10,
                interval=2, non_block_params=non_block_params(model))
    args.update(kwargs)
    return P3BPruner(model, **args)


def _size(module):
    return sum(p.numel() for p in module.parameters())


def test_cheap_probes_are_a_small_fraction_of_the_reference():
    # DeiT-T-like widths, 100 classes, 24 sub-blocks
    ref = ProbeBank(24, 192, 100)
    cheap = CheapProbeBank(24, 192, 100, width=32)
    assert _size(cheap) < 0.05 * _size(ref)
    feats = [torch.randn(4, 17, 192) for _ in range(25)]
    loss, ce = cheap(feats, torch.randint(0, 100, (4, )), (4, 4))
    assert ce.shape == (4, 24) and loss.ndim == 0
    # position i+1 is the output probe of block i and the input of i+1
    torch.testing.assert_close(ce[1, :-1], ce[0, 1:])
    torch.testing.assert_close(ce[3, :-1], ce[2, 1:])


def test_probe_window_runs_the_probes_only_before_updates():
    pruner = _pruner(ToyViT(), start=4, sparse=10, final=15, interval=4,
                     probe='cheap', probe_window=2)
    runs = [s for s in range(20) if pruner.probes_run(s)]
    # updates at 7, 11 (and the final step 14): two steps before each
    assert runs == [6, 7, 10, 11, 13, 14]
    everywhere = _pruner(ToyViT(), start=4, sparse=10, final=15,
                         interval=4, probe='cheap')
    assert [s for s in range(20) if everywhere.probes_run(s)] == \
        list(range(15))


def test_probes_see_a_random_part_of_the_batch():
    torch.manual_seed(0)
    model = ToyViT()
    pruner = _pruner(model, probe='cheap', probe_fraction=0.25)
    sizes = []
    pruner.probes.down[0].register_forward_pre_hook(
        lambda m, args: sizes.append(args[0].shape[0]))
    train_steps(model, pruner, 3)
    assert sizes == [2, 2, 2]  # 25 % of 8


def test_cheap_probe_run_meets_the_budget_and_resumes():
    torch.manual_seed(0)
    model = ToyViT(depth=3)
    kw = dict(keep_ratio=0.45, start=0, sparse=4, final=12, interval=3,
              probe='cheap', probe_width=8, probe_fraction=0.5,
              probe_window=2)
    pruner = _pruner(model, **kw)
    train_steps(model, pruner, 5, seed=1)
    state = copy.deepcopy(pruner.get_state())
    weights = copy.deepcopy(model.state_dict())
    rng = torch.get_rng_state()
    rest = train_steps(model, pruner, 7, start_step=5, seed=2)
    assert rest[-1]['finalized']
    assert rest[-1]['global_keep'] == pytest.approx(0.45, abs=0.02)
    assert rest[0]['benefit_cls'] is not None

    torch.set_rng_state(rng)
    model2 = ToyViT(depth=3)
    model2.load_state_dict(weights)
    pruner2 = _pruner(model2, **kw)
    pruner2.set_state(state)
    rest2 = train_steps(model2, pruner2, 7, start_step=5, seed=2)
    for a, b in zip(rest, rest2):
        assert a['importance'] == pytest.approx(b['importance'])
    for k, g in pruner.gated.gates.items():
        assert torch.equal(g, pruner2.gated.gates[k])


def test_shadow_probes_measure_agreement_in_the_same_run():
    from mmsparse.p3b.agreement import ShadowP3BPruner, spearman
    assert spearman(torch.tensor([1., 3., 2.]),
                    torch.tensor([10., 30., 20.])) == pytest.approx(1.0)
    torch.manual_seed(0)
    model = ToyViT(depth=2)
    pruner = ShadowP3BPruner(
        model, 5, 0.5, 0, 4, 8, 2, non_block_params=non_block_params(model),
        shadows=dict(same=dict(probe='reference', seed=0),
                     cheap=dict(probe='cheap', probe_width=8,
                                probe_window=1)))
    train_steps(model, pruner, 8)
    assert len(pruner.agreement) == len(pruner.history) == 4
    for row in pruner.agreement:
        same = row['shadows']['same']
        # the driver's own design and seed: identical budgets
        assert same['max_abs_keep_diff'] < 1e-9
        assert same['spearman_benefit_cls'] == pytest.approx(1.0)
        assert 0 <= row['shadows']['cheap']['max_abs_keep_diff'] <= 1
