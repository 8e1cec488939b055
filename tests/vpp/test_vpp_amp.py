"""VPP under mixed precision (CPU autocast, bfloat16 and float16).

The Map-SM affinity ``q k^T`` runs on raw tokens (|phi| in the hundreds for
ViT-S): in half precision its rounding step (bf16: 2 at 256) is larger than
the distance prior's step between neighbouring patches, so rounding would
decide the assignment. It must run in float32 with autocast disabled.
"""
import copy

import pytest
import torch

from mmsparse.registry import MODELS
from mmsparse.vpp import TemporalMapping, tokens_per_block

DTYPES = [torch.bfloat16, torch.float16]
IMG = (64, 96)  # 4 x 6 grid of 16 px patches
N = 24
VIT = dict(
    type='ViTPyramid',
    arch=dict(embed_dims=32, num_layers=4, num_heads=2,
              feedforward_channels=64),
    img_size=IMG,
    drop_path_rate=0.,
    out_channels=16)


def scene_tokens(h=8, w=10, c=384, scale=1.0, seed=0):
    """Raw tokens of two frames of a nearly uniform, nearly static scene: a
    large common component (|phi| ~ 256 * scale**2, as for raw ViT-S tokens)
    plus per-patch differences that move ``q k^T`` by about one unit, i.e.
    below the bf16 rounding step (2 at 256). Half-precision rounding changes
    most of the assignments here; at scale 20 fp16 overflows."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(c, generator=g)
    base = base / base.norm() * 16 * scale
    key = base + torch.randn(1, h * w, c, generator=g) * 0.05 * scale
    query = key + torch.randn(1, h * w, c, generator=g) * 0.01 * scale
    return query, key, (h, w)


@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('scale', [1.0, 20.0])
def test_affinity_is_float32_under_autocast(dtype, scale):
    """The same assignment as float32, finite where fp16 would overflow.
    (The old half-precision product agreed with float32 on 40 % (bf16) /
    89 % (fp16) of these patches, and overflowed at scale 20.)"""
    q, k, hw = scene_tokens(scale=scale)
    value = torch.arange(q.shape[1], dtype=torch.float)[None, :, None]
    m = TemporalMapping().eval()
    ref = m.affinity(q, k, hw).argmax(-1)
    with torch.autocast('cpu', dtype=dtype):
        phi = m.affinity(q.to(dtype), k.to(dtype), hw)
        out = m(q, k, value, hw)
    assert phi.dtype == torch.float32 and torch.isfinite(phi).all()
    assert torch.equal(out[..., 0].long(), ref)


@pytest.mark.parametrize('dtype', DTYPES)
def test_training_assignment_is_exactly_one_hot_under_autocast(dtype):
    q, k, hw = scene_tokens(h=4, w=5, c=64)
    value = torch.randn(1, 20, 8).to(dtype)
    m = TemporalMapping(gumbel_noise=False).train()
    ref = m.affinity(q, k, hw).argmax(-1)
    q.requires_grad_(True)
    with torch.autocast('cpu', dtype=dtype):
        out = m(q, k, value, hw)
    # forward value: exactly the assigned previous-frame values
    assert torch.equal(out.float(), value[0, ref[0]][None].float())
    out.float().sum().backward()
    assert torch.isfinite(q.grad).all()


def build_vpp(**kwargs):
    torch.manual_seed(0)
    cfg = dict(type='VPPBackbone', backbone=copy.deepcopy(VIT),
               smooth_kernel=3, prune_layer=[1, 2], keep_ratio=[0.6, 0.4],
               num_frames=3)
    cfg.update(kwargs)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


class AssignmentRecorder:
    """Records the Map-SM inputs and inference assignments of a backbone."""

    def __init__(self, mapping):
        self.inputs, self.assignments = [], []
        mapping.register_forward_pre_hook(
            lambda mod, args: self.inputs.append(args))
        original = mapping.assign

        def assign(phi):
            idx = original(phi)
            self.assignments.append(idx)
            return idx

        mapping.assign = assign


def shifted_video(t=3, seed=0):
    """A random texture moving right by one patch per frame."""
    g = torch.Generator().manual_seed(seed)
    wide = torch.randn(3, IMG[0], IMG[1] + 16 * t, generator=g)
    return torch.stack(
        [wide[:, :, 16 * (t - i):16 * (t - i) + IMG[1]] for i in range(t)])


@pytest.mark.parametrize('dtype', DTYPES)
def test_backbone_under_autocast(dtype):
    """Eval: finite outputs, exact keep counts per block, the assignment of
    the float32 affinity on the same tokens, and the same assignment as a
    float32 run on a fixed input. Train: finite outputs, loss and grads."""
    vpp = build_vpp().eval()
    rec = AssignmentRecorder(vpp.pruner.mapping)
    # a static, uniform, bright scene: patches differ by their position
    # embedding only and |phi| ~ 200 (the old half-precision affinity got
    # the assignments of both pruned frames wrong here, bf16 and fp16)
    static = torch.full((3, 3, *IMG), 5.0)
    video = shifted_video()
    expected = tokens_per_block(N, (0.6, 0.4), (1, 2), 4)
    with torch.no_grad():
        ref_feats = vpp(video)
        ref_assign = list(rec.assignments)
        rec.inputs.clear()
        rec.assignments.clear()
        with torch.autocast('cpu', dtype=dtype):
            feats = vpp(video)
            vpp(static)
    assert all(torch.isfinite(f).all() for f in feats)
    assert [f.shape for f in feats] == [f.shape for f in ref_feats]
    assert [s.counts for s in vpp.last_stats] == [[N] * 4, expected, expected]
    assert len(rec.assignments) == 4  # frames 1 and 2 of two videos
    # every assignment is the float32 one of the same (half) tokens
    for (q, k, v, hw, valid), idx in zip(rec.inputs, rec.assignments):
        with torch.autocast('cpu', enabled=False):
            phi = vpp.pruner.mapping.affinity(q.float(), k.float(), hw, valid)
        assert torch.equal(idx, phi.argmax(-1))
    # the moving texture: the same assignment as the float32 run
    for idx, ref in zip(rec.assignments[:2], ref_assign):
        assert torch.equal(idx, ref)

    vpp.train()
    with torch.autocast('cpu', dtype=dtype):
        feats = vpp(torch.cat([video, video.flip(-1)]))
        loss = vpp.pop_losses()
    assert all(torch.isfinite(f).all() for f in feats)
    assert [s.counts for s in vpp.last_stats] == [[N] * 4, expected, expected]
    assert torch.isfinite(loss['loss_vpp_select'])
    (sum(f.float().mean() for f in feats) + loss['loss_vpp_select']).backward()
    grads = [p.grad for p in vpp.pruner.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
