"""Slim backbones equal the gated dense ones (mmpretrain ViT, ViTPyramid)."""
import copy

import pytest
import torch
from mmengine.registry import DefaultScope

from mmsparse.p3b import P3BPruner, non_block_params
from mmsparse.registry import MODELS

ARCH = dict(embed_dims=32, num_layers=3, num_heads=4,
            feedforward_channels=96)


def _mask(pruner, seed, zero=()):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for g in pruner.gated.gates.values():
            keep = torch.rand(g.shape, generator=gen) < 0.55
            keep[-1] = True
            vals = 0.5 + 0.5 * torch.rand(g.shape, generator=gen)
            g.copy_(torch.where(keep, vals, torch.zeros_like(g)))
        for block, name in zero:
            pruner.gated.gate(block, name).zero_()
    pruner.gated.active = True


def _check(dense_cfg, slim_type, zero, x):
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        dense = MODELS.build(copy.deepcopy(dense_cfg))
        dense.init_weights()
        # non-trivial norms and biases
        for name, p in dense.named_parameters():
            if name.endswith('bias') or 'norm' in name or 'ln' in name:
                with torch.no_grad():
                    p.add_(0.1 * torch.randn_like(p))
        dense.eval()
        pruner = P3BPruner(dense, 3, 0.5, 0, 1, 2, 1,
                           non_block_params=non_block_params(dense),
                           block_budget='uniform')
        _mask(pruner, 0, zero)
        slim_cfg = dict(copy.deepcopy(dense_cfg), type=slim_type,
                        slim_arch=pruner.slim_arch())
        slim = MODELS.build(slim_cfg)
        slim.eval()  # mmpretrain backbones' train() returns None
        slim.load_state_dict(pruner.slim_state_dict(dense), strict=True)
    with torch.no_grad():
        ref, out = dense(x), slim(x)
    for a, b in zip(ref, out):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    # exactly the kept parameters; layer scales are folded into the weights
    layer_scales = sum(p.numel() for n, p in dense.named_parameters()
                       if 'gamma' in n)
    removed = float(pruner.dense_params.sum() - pruner.kept_params().sum())
    assert sum(p.numel() for p in slim.parameters()) == sum(
        p.numel() for p in dense.parameters()) - removed - layer_scales
    return pruner, slim


@pytest.mark.parametrize('zero', [
    (),
    ((0, 'attn_head'), (1, 'mlp_in'), (2, 'attn_out')),
])
def test_slim_vision_transformer_equals_masked(zero):
    cfg = dict(type='VisionTransformer', arch=ARCH, img_size=16,
               patch_size=4, layer_scale_init_value=0.5, out_type='raw')
    pruner, slim = _check(cfg, 'SlimVisionTransformer', zero,
                          torch.randn(2, 3, 16, 16))
    assert pruner.view.style == 'mmpretrain'
    modes = [(b.attn.mode, b.mlp.mode) for b in slim.layers]
    if zero:
        assert modes[0][0] == 'const' and modes[1][1] == 'const'
        assert modes[2][0] == 'skip'


def test_slim_vit_pyramid_equals_masked():
    cfg = dict(type='ViTPyramid', arch=ARCH, img_size=32, patch_size=8,
               drop_path_rate=0.0, out_channels=None)
    pruner, slim = _check(cfg, 'SlimViTPyramid', ((1, 'mlp_hidden'), ),
                          torch.randn(2, 3, 32, 32))
    assert pruner.view.style == 'timm'
    assert slim.blocks[1].mlp.mode == 'const'


def test_slim_arch_is_validated():
    bad = [dict(attn_in=4, attn_head=9, attn_out=5, mlp_in=3, mlp_hidden=4,
                mlp_out=8)] * 3
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        with pytest.raises(ValueError, match=r"slim_arch\[0\]\['attn_head'\]"):
            MODELS.build(dict(type='SlimVisionTransformer', arch=ARCH,
                              img_size=16, patch_size=4, slim_arch=bad))
        with pytest.raises(ValueError, match='list of 3 dicts'):
            MODELS.build(dict(type='SlimVisionTransformer', arch=ARCH,
                              img_size=16, patch_size=4, slim_arch=bad[:1]))
