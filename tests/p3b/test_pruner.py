"""P3B pruner on a tiny plain-torch ViT: gates, Taylor scores, masks, slim."""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmsparse.p3b import (GATE_NAMES, P3BPruner, non_block_params, slice_block,
                          vit_view)
from mmsparse.p3b.gates import ATTN_GATES, MLP_GATES
from .toy_vit import ToyViT, train_steps


def _pruner(model, **kwargs):
    args = dict(num_classes=5, keep_ratio=0.5, start=0, sparse=6, final=10,
                interval=2, non_block_params=non_block_params(model))
    args.update(kwargs)
    return P3BPruner(model, **args)


def test_gates_leave_the_state_dict_alone():
    torch.manual_seed(0)
    model = ToyViT()
    dense = copy.deepcopy(model.state_dict())
    pruner = _pruner(model)
    assert list(model.state_dict()) == list(dense)
    ToyViT().load_state_dict(model.state_dict(), strict=True)
    model.load_state_dict(dense, strict=True)
    # inactive gates (before the first update) do not change the output
    x = torch.randn(2, 3, 16, 16)
    pruner.gated.active = False
    ref = model(x)
    pruner.gated.active = True
    assert torch.equal(ref, model(x))  # all gates are 1
    pruner.remove()
    assert torch.equal(ref, model(x))


def test_taylor_scores_accumulate_squared_gate_gradients():
    torch.manual_seed(0)
    model = ToyViT()
    pruner = _pruner(model)
    with torch.no_grad():
        for g in pruner.gated.gates.values():
            g.uniform_(0.5, 1.0)
    gen = torch.Generator().manual_seed(1)
    batches = [(torch.randn(4, 3, 16, 16, generator=gen),
                torch.randint(0, 5, (4, ), generator=gen)) for _ in range(2)]
    expect = {k: torch.zeros_like(g, dtype=torch.float64)
              for k, g in pruner.gated.gates.items()}
    for step, (x, y) in enumerate(batches):
        # independent gradient of the loss w.r.t. the gates
        pruner.gated.active = True
        gates = list(pruner.gated.gates.values())
        for g in gates:
            g.requires_grad_(True)
        grads = torch.autograd.grad(F.cross_entropy(model(x), y), gates)
        for (k, g), grad in zip(pruner.gated.gates.items(), grads):
            expect[k] += ((g.detach() * grad).double())**2
        pruner.before_iter(step)
        F.cross_entropy(model(x), y).backward()
        pruner.after_iter(step, y)
    assert pruner.taylor_count == 0  # step 1 was an update: stats reset
    assert pruner.last_stats['taylor_count'] == 2
    for k, v in expect.items():
        assert v.abs().sum() > 0
        torch.testing.assert_close(pruner.last_stats['taylor'][k], v,
                                   rtol=1e-5, atol=1e-12)


def test_updates_meet_block_budgets_and_can_reactivate():
    torch.manual_seed(0)
    model = ToyViT(depth=3)
    pruner = _pruner(model, keep_ratio=0.45, start=0, sparse=4, final=12,
                     interval=2, width_multiple=1)  # per-block widths exact
    records = train_steps(model, pruner, 12)
    assert [r['step'] for r in records] == [1, 3, 5, 7, 9, 11]
    assert records[-1]['finalized'] and records[-1]['tau'] == 0.0
    # ramp: the global keep ratio decreases to the goal
    keeps = [r['global_keep'] for r in records]
    assert keeps[0] > keeps[1] > 0.45 - 0.02
    assert keeps[-1] == pytest.approx(0.45, abs=0.02)
    final = records[-1]
    for goal, kept in zip(final['goal_keep'], final['block_keep']):
        assert kept == pytest.approx(goal, abs=0.05)
    # the final masks are hard
    for g in pruner.gated.gates.values():
        assert set(g.unique().tolist()) <= {0.0, 1.0}
    assert pruner.probes is None and pruner.finalized
    # masks are rebuilt from scratch: a larger budget brings elements back
    sub = 0
    pruner._rebuild_masks(sub, 0.2, 0.0)
    small = pruner.gated.sub_block_kept_params(sub)
    pruner._rebuild_masks(sub, 0.9, 0.0)
    large = pruner.gated.sub_block_kept_params(sub)
    dense = float(pruner.dense_params[sub])
    assert small == pytest.approx(0.2 * dense, rel=0.1)
    assert large == pytest.approx(0.9 * dense, rel=0.05)


def test_uniform_and_magnitude_variants_have_equal_budget():
    results = {}
    for budget, score in (('benefit', 'taylor'), ('uniform', 'taylor'),
                          ('uniform', 'magnitude')):
        torch.manual_seed(0)
        model = ToyViT(depth=3)
        pruner = _pruner(model, keep_ratio=0.4, block_budget=budget,
                         element_score=score, start=0, sparse=4, final=8)
        train_steps(model, pruner, 8)
        results[(budget, score)] = pruner
        if budget == 'uniform':
            assert pruner.probes is None
            goal = pruner.history[-1]['goal_keep']
            assert max(goal) - min(goal) < 1e-9
    keeps = [p.global_keep_ratio() for p in results.values()]
    assert max(keeps) - min(keeps) < 0.02
    assert all(k == pytest.approx(0.4, abs=0.02) for k in keeps)


def _random_masks(pruner, gen, modes):
    """Hard masks with soft kept values; some sub-blocks const / skipped."""
    with torch.no_grad():
        for key, g in pruner.gated.gates.items():
            keep = torch.rand(g.shape, generator=gen) < 0.6
            keep[0] = True
            g.copy_(torch.where(keep, 0.5 + 0.5 * torch.rand(
                g.shape, generator=gen), torch.zeros_like(g)))
        for block_idx, name in modes:
            pruner.gated.gate(block_idx, name).zero_()


@pytest.mark.parametrize('modes', [
    (),
    ((0, 'attn_in'), (1, 'mlp_hidden')),  # constant sub-blocks
    ((0, 'attn_head'), (0, 'mlp_in'), (1, 'attn_out')),  # const + skip
    ((0, 'attn_out'), (0, 'mlp_out'), (1, 'attn_in')),
])
def test_slim_blocks_equal_the_masked_model(modes):
    torch.manual_seed(0)
    model = ToyViT(depth=2).eval()
    pruner = _pruner(model)
    _random_masks(pruner, torch.Generator().manual_seed(3), modes)
    pruner.gated.active = True
    x = torch.randn(3, 17, 32)
    with torch.no_grad():
        ref = x
        for blk in model.blocks:
            ref = blk(ref)
        out = x
        slim = pruner.slim_blocks()
        for blk in slim:
            out = blk.eval()(out)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=2e-6)
    kept = pruner.kept_params().sum()
    assert sum(p.numel() for b in slim for p in b.parameters()) == kept
    for block_idx, name in modes:
        sub = slim[block_idx].attn if name in ATTN_GATES else \
            slim[block_idx].mlp
        assert sub.mode == ('skip' if name.endswith('_out') else 'const')


def test_bad_arguments_raise_clear_errors():
    model = ToyViT()
    for bad in (0, 0.0, -0.5, 1.5, True, '0.5'):
        with pytest.raises(ValueError, match='keep_ratio must be a number'):
            _pruner(model, keep_ratio=bad)
    with pytest.raises(ValueError, match='prune start must not come after'):
        _pruner(model, start=12, sparse=6, final=10)
    with pytest.raises(ValueError, match='keep_ratio=0.01 is below'):
        _pruner(model, keep_ratio=0.01)
    with pytest.raises(ValueError, match='block_budget'):
        _pruner(model, block_budget='random')
    with pytest.raises(ValueError, match='gate_scales'):
        _pruner(model, gate_scales=dict(attn_qkv=2.0))
    cnn = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
    with pytest.raises(TypeError, match='found Sequential with children'):
        vit_view(cnn)
    assert set(GATE_NAMES) == set(ATTN_GATES + MLP_GATES)
    assert slice_block  # exported


def test_state_round_trip_gives_identical_updates():
    torch.manual_seed(0)
    model = ToyViT(depth=2)
    pruner = _pruner(model, start=0, sparse=6, final=12, interval=3)
    train_steps(model, pruner, 5, seed=1)
    state = copy.deepcopy(pruner.get_state())
    weights = copy.deepcopy(model.state_dict())
    rng = torch.get_rng_state()
    rest = train_steps(model, pruner, 7, start_step=5, seed=2)

    torch.set_rng_state(rng)
    model2 = ToyViT(depth=2)
    model2.load_state_dict(weights)
    pruner2 = _pruner(model2, start=0, sparse=6, final=12, interval=3)
    pruner2.set_state(state)
    rest2 = train_steps(model2, pruner2, 7, start_step=5, seed=2)
    assert len(rest) == len(rest2) == 3
    for a, b in zip(rest, rest2):
        assert a['block_keep'] == pytest.approx(b['block_keep'])
        assert a['importance'] == pytest.approx(b['importance'])
    for k, g in pruner.gated.gates.items():
        assert torch.equal(g, pruner2.gated.gates[k])
    with pytest.raises(ValueError, match='schedule'):
        _pruner(ToyViT(depth=2), start=1, sparse=6, final=12,
                interval=3).set_state(state)


def test_final_widths_round_to_a_multiple_near_the_budget():
    torch.manual_seed(0)
    model = ToyViT(dims=64, depth=2, heads=2)
    pruner = _pruner(model, keep_ratio=0.4, start=0, sparse=4, final=8,
                     width_multiple=8)
    records = train_steps(model, pruner, 8)
    assert records[-1]['finalized']
    for dims in pruner.slim_arch():
        for name, kept in dims.items():
            assert kept % 8 == 0, (name, kept)
    assert pruner.global_keep_ratio() == pytest.approx(0.4, abs=0.03)
    x = torch.randn(2, 17, 64)
    with torch.no_grad():
        ref = x
        for blk in model.eval().blocks:
            ref = blk(ref)
        out = x
        for blk in pruner.slim_blocks():
            out = blk.eval()(out)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=2e-6)
    with pytest.raises(ValueError, match='width_multiple'):
        _pruner(model, width_multiple=0)


def test_benefit_first_keeps_the_first_budget_and_differs_from_p3b():
    """The no-reactivation ablation: same run, but every solve after the first
    sees the first update's importance; P3B itself re-solves each time."""
    def run(block_budget):
        torch.manual_seed(0)
        model = ToyViT(depth=3)
        pruner = _pruner(model, keep_ratio=0.45, start=0, sparse=8,
                         final=12, interval=2, block_budget=block_budget)
        return pruner, train_steps(model, pruner, 12)

    frozen_pruner, frozen = run('benefit-first')
    _, p3b = run('benefit')
    assert frozen_pruner.probes is None  # dropped at finalize, like P3B
    for rec in frozen[1:]:
        assert rec['goal_keep'] == pytest.approx(frozen[0]['goal_keep'])
        # benefits are still measured and recorded
        assert rec['benefit_cls'] is not None
    assert frozen[-1]['global_keep'] == pytest.approx(0.45, abs=0.02)
    # the first update is the same decision in both runs; P3B moves later
    assert p3b[0]['goal_keep'] == pytest.approx(frozen[0]['goal_keep'])
    assert any(r['goal_keep'] != pytest.approx(p3b[0]['goal_keep'])
               for r in p3b[1:])
    # the block budget is part of the run: no resume across ablations
    state = frozen_pruner.get_state()
    other = _pruner(ToyViT(depth=3), keep_ratio=0.45, start=0, sparse=8,
                    final=12, interval=2)
    with pytest.raises(ValueError, match="block_budget='benefit-first'"):
        other.check_state(state)


def test_untrained_pruner_slims_to_the_budget_and_restores_the_model():
    from mmsparse.p3b import untrained_pruner
    torch.manual_seed(0)
    model = ToyViT(depth=2)
    x = torch.randn(2, 3, 16, 16)
    dense_out = model(x)
    archs = []
    for score, seed in (('random', 0), ('random', 1), ('magnitude', 0)):
        pruner = untrained_pruner(model, 0.5, score, seed=seed)
        assert pruner.finalized
        assert pruner.global_keep_ratio() == pytest.approx(0.5, abs=0.03)
        # uniform budget: every sub-block keeps about the same share
        kept = pruner.kept_params() / pruner.dense_params
        assert float(kept.max() - kept.min()) < 0.1
        archs.append(pruner.get_state()['gates'])
        pruner.remove()
        assert torch.equal(model(x), dense_out)
    # random scores depend on the seed, magnitude does not need one
    assert any(not torch.equal(archs[0][k], archs[1][k]) for k in archs[0])
    with pytest.raises(ValueError, match='untrained_pruner: score'):
        untrained_pruner(model, 0.5, 'taylor')
