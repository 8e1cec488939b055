"""Gates folded into the layer parameters compute what the activation gates
compute: the same outputs, gate gradients, Taylor scores and masks."""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from mmsparse.p3b import P3BPruner, non_block_params, vit_view
from mmsparse.p3b.gates import GatedViT
from .toy_vit import ToyViT, train_steps


def _mmpretrain_vit():
    from mmpretrain.models.backbones import VisionTransformer
    return VisionTransformer(
        arch=dict(embed_dims=32, num_layers=2, num_heads=2,
                  feedforward_channels=64), img_size=16, patch_size=4,
        out_type='cls_token', init_cfg=None)


def _models():
    return dict(toy=ToyViT, mmpretrain=_mmpretrain_vit)


def _loss(model, x, y):
    out = model(x)
    if isinstance(out, tuple):  # mmpretrain backbone: (cls_token, )
        out = out[-1][:, :5]
    return F.cross_entropy(out.float(), y), out


def _gated_pair(build, dtype):
    """A model with activation gates and a copy with folded gates, both
    with the same random soft gates (some exactly 0)."""
    torch.manual_seed(0)
    model = build().to(dtype)
    model_f = copy.deepcopy(model)
    ref = GatedViT(vit_view(model), fold=False).to(dtype)
    new = GatedViT(vit_view(model_f), fold=True).to(dtype)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for k, g in ref.gates.items():
            v = torch.rand(g.shape, generator=gen, dtype=torch.float64)
            v[::4] = 0
            g.copy_(v)
            new.gates[k].copy_(v)
    for gated in (ref, new):
        gated.active = True
        gated.set_requires_grad(True)
    return (model, ref), (model_f, new)


@pytest.mark.parametrize('arch', ['toy', 'mmpretrain'])
def test_folded_gates_give_the_same_outputs_and_gradients(arch):
    """float64: outputs, gate gradients and weight gradients agree to
    rounding; the parameters are the model's own again after the call."""
    (model, ref), (model_f, new) = _gated_pair(_models()[arch],
                                               torch.float64)
    params = dict(model_f.named_parameters())
    x = torch.randn(4, 3, 16, 16, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3])
    loss, out = _loss(model, x, y)
    loss_f, out_f = _loss(model_f, x, y)
    torch.testing.assert_close(out_f, out, rtol=1e-12, atol=1e-12)
    loss.backward()
    loss_f.backward()
    for k, g in ref.gates.items():
        assert g.grad.abs().sum() > 0, k
        # zero gates still get their gradient (the Taylor score is 0)
        torch.testing.assert_close(new.gates[k].grad, g.grad, rtol=1e-10,
                                   atol=1e-14)
    for (name, p), p_f in zip(model.named_parameters(), params.values()):
        torch.testing.assert_close(p_f.grad, p.grad, rtol=1e-10, atol=1e-14)
    # the swap is undone: the same Parameter objects, the state dict alone
    assert dict(model_f.named_parameters()) == params
    assert all(type(p) is nn.Parameter for p in params.values())
    assert list(model_f.state_dict()) == list(model.state_dict())


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_folded_gates_under_autocast(dtype):
    """Mixed precision: same outputs and gate gradients to the precision of
    the low-precision matmuls."""
    (model, ref), (model_f, new) = _gated_pair(ToyViT, torch.float32)
    x = torch.randn(8, 3, 16, 16)
    y = torch.randint(0, 5, (8, ))
    with torch.autocast('cpu', dtype=dtype):
        loss, out = _loss(model, x, y)
        loss_f, out_f = _loss(model_f, x, y)
    assert out_f.dtype == out.dtype == dtype
    torch.testing.assert_close(out_f.float(), out.float(), rtol=0.05,
                               atol=0.05)
    loss.backward()
    loss_f.backward()
    grads = torch.cat([g.grad for g in ref.gates.values()])
    grads_f = torch.cat([g.grad for g in new.gates.values()])
    assert torch.isfinite(grads_f).all()
    assert grads_f.dtype == torch.float32
    rel = (grads_f - grads).norm() / grads.norm()
    assert rel < 0.05, float(rel)


def test_parameters_come_back_when_the_forward_raises():
    (_, _), (model, new) = _gated_pair(ToyViT, torch.float32)
    params = dict(model.named_parameters())

    def fail(module, args):
        raise RuntimeError('boom')

    handle = model.blocks[0].mlp.act.register_forward_pre_hook(fail)
    with pytest.raises(RuntimeError, match='boom'):
        model(torch.randn(2, 3, 16, 16))
    handle.remove()
    assert dict(model.named_parameters()) == params
    assert all(type(p) is nn.Parameter for p in params.values())
    assert not new._swapped


def test_set_fold_switches_and_keeps_the_flags():
    torch.manual_seed(0)
    model = ToyViT()
    gated = GatedViT(vit_view(model))
    assert gated.fold
    gated.active, gated.capture = True, True
    hooks = len(gated._handles)
    gated.set_fold(False)
    assert not gated.fold and gated.active and gated.capture
    assert len(gated._handles) == hooks - 4 * len(gated.view.blocks)
    gated.remove()
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks


@pytest.mark.parametrize('block_budget', ['uniform', 'benefit'])
def test_pruner_scores_and_masks_do_not_depend_on_folding(block_budget):
    """Whole pruning runs (ramp, soft masks, reactivation, finalize) with
    activation gates and with folded gates: equal Taylor scores to float
    tolerance and identical masks and budgets."""
    torch.manual_seed(0)
    model = ToyViT(depth=3)
    model_f = copy.deepcopy(model)
    kw = dict(num_classes=5, keep_ratio=0.5, start=0, sparse=6, final=10,
              interval=2, non_block_params=non_block_params(model),
              block_budget=block_budget, probe='cheap', probe_width=8)
    ref, new = P3BPruner(model, **kw), P3BPruner(model_f, **kw)
    ref.gated.set_fold(False)
    assert new.gated.fold and not ref.gated.fold
    taylor, taylor_f = [], []
    for start in range(0, 10, 2):
        # statistics of the interval, just before the update rebuilds masks
        train_steps(model, ref, 1, start_step=start, seed=start)
        train_steps(model_f, new, 1, start_step=start, seed=start)
        taylor.append({k: v.clone() for k, v in ref.taylor.items()})
        taylor_f.append({k: v.clone() for k, v in new.taylor.items()})
        train_steps(model, ref, 1, start_step=start + 1, seed=start + 1)
        train_steps(model_f, new, 1, start_step=start + 1, seed=start + 1)
    for scores, scores_f in zip(taylor, taylor_f):
        for k, v in scores.items():
            assert v.abs().sum() > 0, k
            torch.testing.assert_close(scores_f[k], v, rtol=1e-3,
                                       atol=1e-5 * float(v.abs().max()))
    assert len(ref.history) == len(new.history) == 5
    for rec, rec_f in zip(ref.history, new.history):
        assert rec_f['kept_params'] == rec['kept_params']
        assert rec_f['step'] == rec['step']
        assert rec_f['goal_keep'] == pytest.approx(rec['goal_keep'],
                                                   rel=1e-4)
    assert ref.finalized and new.finalized
    for k, g in ref.gated.gates.items():
        assert torch.equal(new.gated.gates[k], g), k


class _CheckpointedBlock(nn.Module):
    """A ToyViT block run under activation checkpointing (the forward, and
    so the folding, runs again in the backward)."""

    def __init__(self, block, use_reentrant):
        super().__init__()
        self.block, self.use_reentrant = block, use_reentrant
        self.norm1, self.attn = block.norm1, block.attn
        self.norm2, self.mlp = block.norm2, block.mlp

    def forward(self, x):
        return checkpoint(self.block, x, use_reentrant=self.use_reentrant)


@pytest.mark.parametrize('use_reentrant', [False, True])
def test_folded_gates_under_activation_checkpointing(use_reentrant):
    (model, ref), (model_f, new) = _gated_pair(ToyViT, torch.float64)
    new.remove()
    model_f.blocks = nn.ModuleList(
        [_CheckpointedBlock(b, use_reentrant) for b in model_f.blocks])
    ckpt = GatedViT(vit_view(model_f)).to(torch.float64)
    with torch.no_grad():
        for k, g in ref.gates.items():
            ckpt.gates[k].copy_(g)
    ckpt.active = True
    ckpt.set_requires_grad(True)
    x = torch.randn(4, 3, 16, 16, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3])
    _loss(model, x, y)[0].backward()
    _loss(model_f, x, y)[0].backward()
    for k, g in ref.gates.items():
        torch.testing.assert_close(ckpt.gates[k].grad, g.grad, rtol=1e-10,
                                   atol=1e-14)
    for p, p_f in zip(model.parameters(), model_f.parameters()):
        assert type(p_f) is nn.Parameter
        torch.testing.assert_close(p_f.grad, p.grad, rtol=1e-10, atol=1e-14)
