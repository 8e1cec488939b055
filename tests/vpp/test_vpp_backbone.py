"""VPPBackbone around a tiny ViTPyramid: outputs, fill-back, errors, keys."""
import copy

import pytest
import torch
import torch.nn as nn
from mmengine.registry import DefaultScope

from mmsparse.models.backbones import ViTPyramid, VPPBackbone
from mmsparse.registry import MODELS
from mmsparse.vpp import num_keep

IMG = (64, 96)  # 4 x 6 grid of 16 px patches
GRID = (4, 6)
N = GRID[0] * GRID[1]
VIT = dict(
    type='ViTPyramid',
    arch=dict(embed_dims=32, num_layers=4, num_heads=2,
              feedforward_channels=64),
    img_size=IMG,
    drop_path_rate=0.,
    out_channels=16)


def build(**kwargs):
    torch.manual_seed(0)
    cfg = dict(type='VPPBackbone', backbone=copy.deepcopy(VIT),
               smooth_kernel=3)
    cfg.update(kwargs)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def video(t=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(t, 3, *IMG, generator=g)


def test_keep_ratio_one_reproduces_wrapped_backbone_exactly():
    vpp = build(keep_ratio=1.0, num_frames=3)
    x = video(6)
    for train in (True, False):
        vpp.train(train)
        vpp.backbone.train(train)
        with torch.no_grad():
            ours = vpp(x)
            ref = vpp.backbone(x)
        assert len(ours) == len(ref) == 4
        for a, b in zip(ours, ref):
            assert torch.equal(a, b)
    assert sum(p.numel() for p in vpp.pruner.parameters()) == 0


@pytest.mark.parametrize('selector', ['temporal', 'image', 'random'])
def test_shapes_match_dense_and_first_frame_is_dense(selector):
    vpp = build(keep_ratio=0.5, selector=selector).eval()
    x = video(3)
    with torch.no_grad():
        ours = vpp(x)
        dense = vpp.backbone(x)
        dense0 = vpp.backbone(x[:1])
    assert [o.shape for o in ours] == [d.shape for d in dense]
    # frame 0 is dense: same features as the wrapped backbone
    for a, b in zip(ours, dense0):
        assert torch.allclose(a[:1], b, atol=1e-5)
    # later frames are pruned with exactly round(0.5 * N) patches kept
    stats = vpp.last_stats
    assert [s.pruned for s in stats] == [False, True, True]
    assert [s.counts[-1] for s in stats] == [N, num_keep(N, .5),
                                             num_keep(N, .5)]
    masks = vpp.keep_masks()
    assert masks.shape == (3, *GRID) and masks[0].all()
    assert masks[1].sum() == num_keep(N, .5)
    # pruned frames differ from the dense result
    assert not torch.allclose(ours[2][1:], dense[2][1:], atol=1e-4)


def test_filled_back_map_matches_independent_reference():
    """Prune before the last block: kept positions = last block run on the
    kept tokens only, pruned positions = tokens entering that block; then
    the dense norm + pyramid. Checks shape and grid order of the fill-back."""
    vpp = build(keep_ratio=0.5, prune_layer=3, selector='image').eval()
    vit = vpp.backbone
    x = video(2, seed=1)
    with torch.no_grad():
        ours = vpp(x)
        keep = vpp.last_stats[1].keep_mask[0]
        tokens, hw = vit.embed(x[1:])
        for blk in vit.blocks[:3]:
            tokens = blk(tokens)
        pos = torch.cat([torch.zeros(1, dtype=torch.long),
                         keep.nonzero()[:, 0] + 1])
        ref = tokens.clone()
        ref[:, pos] = vit.blocks[3](tokens[:, pos])
        ref_feats = vit.pyramid(vit.tokens_to_featmap(ref, hw))
    for a, b in zip(ours, ref_feats):
        assert a[1:].shape == b.shape
        assert torch.allclose(a[1:], b, atol=1e-5)


def test_training_clips_in_order_and_losses():
    vpp = build(keep_ratio=0.5, num_frames=3).train()
    x = video(6)  # two clips [v0f0, v0f1, v0f2, v1f0, v1f1, v1f2]
    feats = vpp(x)
    assert feats[0].shape[0] == 6
    stats = vpp.last_stats
    assert [s.pruned for s in stats] == [False, True, True]
    assert stats[1].keep_mask.shape == (2, N)  # one row per clip
    out = vpp.pop_losses()
    assert set(out) == {'loss_vpp_select', 'vpp_keep', 'vpp_pkr'}
    assert out['vpp_keep'].item() == pytest.approx(num_keep(N, .5) / N)
    expected_pkr = (1 + 2 * (1 + 3 * num_keep(N, .5) / N) / 4) / 3
    assert out['vpp_pkr'].item() == pytest.approx(expected_pkr)
    (sum(f.sum() for f in feats) + out['loss_vpp_select']).backward()
    assert vpp.pruner.scorers[0].mlp[0].weight.grad.abs().sum() > 0


def test_stream_continues_a_video():
    vpp = build(keep_ratio=0.5).eval()
    x = video(3)
    with torch.no_grad():
        whole = vpp(x)
        f0, prior = vpp.forward_stream(x[:1])
        f12, _ = vpp.forward_stream(x[1:], prior)
    for a, b, c in zip(whole, f0, f12):
        assert torch.allclose(a, torch.cat([b, c]), atol=1e-5)


@pytest.mark.parametrize('kwargs,match', [
    (dict(keep_ratio=0.), 'keep_ratio'),
    (dict(keep_ratio=1.5), 'keep_ratio'),
    (dict(keep_ratio=[0.5, 0.6], prune_layer=[1, 2]), 'keep_ratio'),
    (dict(prune_layer=4), r'prune_layer must be an int in \[0, 3\]'),
    (dict(prune_layer=-1), 'prune_layer'),
    (dict(prune_layer=[2, 1], keep_ratio=[.6, .4]), 'prune_layer'),
    (dict(prior_layer=7), 'prior_layer'),
    (dict(selector='dynamicvit'), 'selector'),
    (dict(num_frames=0), 'num_frames'),
    (dict(smooth_kernel=2), 'smooth_kernel'),
    (dict(map_loss_weight=-1.), 'map_loss_weight'),
])
def test_bad_arguments_raise(kwargs, match):
    # the message speaks as the class the user built, not its parts
    with pytest.raises(ValueError, match='^VPPBackbone: .*' + match):
        build(**kwargs)


def test_unwrappable_backbones_raise():
    with pytest.raises(TypeError, match='^VPPBackbone: cannot wrap Conv2d'):
        VPPBackbone(nn.Conv2d(3, 8, 3))
    with pytest.raises(TypeError, match='config dict or an nn.Module'):
        VPPBackbone('ViTPyramid')


def test_training_needs_clip_length():
    vpp = build(keep_ratio=0.5).train()
    with pytest.raises(ValueError, match='VPPMask2FormerVideo'):
        vpp(video(2))
    vpp.num_frames = 4
    with pytest.raises(ValueError, match='whole number of 4-frame clips'):
        vpp(video(6))


def test_loads_dense_checkpoint_and_layer_depth():
    vpp = build(keep_ratio=0.5)
    dense = ViTPyramid(**{k: v for k, v in VIT.items() if k != 'type'})
    for p in dense.parameters():
        nn.init.normal_(p)
    wrapper = nn.Module()
    wrapper.backbone = vpp
    state = {'backbone.' + k: v for k, v in dense.state_dict().items()}
    missing, unexpected = wrapper.load_state_dict(state, strict=False)
    assert not unexpected
    assert all('pruner' in k for k in missing) and missing
    assert torch.equal(vpp.backbone.blocks[2].mlp.fc1.weight,
                       dense.blocks[2].mlp.fc1.weight)
    # own checkpoints round-trip
    wrapper.load_state_dict(copy.deepcopy(wrapper.state_dict()))
    assert vpp.get_layer_depth('backbone.backbone.blocks.2.attn.qkv.weight',
                               'backbone.') == (3, 6)
    assert vpp.get_layer_depth('backbone.pruner.scorers.0.norm.weight',
                               'backbone.') == (5, 6)


@pytest.mark.parametrize('scope', ['mmdet', 'mmpretrain'])
def test_builds_under_both_scopes(scope):
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(
            dict(type='VPPBackbone', backbone=copy.deepcopy(VIT)))
    assert isinstance(model, VPPBackbone)


def test_pruner_settings_pass_through_with_the_pruners_defaults():
    """Every VideoPatchPruner setting reaches the pruner unchanged (also
    ``gumbel_noise``); unknown or backbone-derived keys name the wrapper."""
    vpp = build(keep_ratio=0.5, gumbel_noise=False, tau_select=3.)
    assert vpp.pruner.keep_ratios == (0.5, )
    assert vpp.pruner.mapping.gumbel_noise is False
    assert all(s.gumbel_noise is False for s in vpp.pruner.scorers
               if hasattr(s, 'gumbel_noise'))
    assert build().pruner.mapping.gumbel_noise is True
    for bad in (dict(keep_ratios=0.5), dict(embed_dims=8)):
        with pytest.raises(TypeError, match=r'^VPPBackbone: unknown '
                           r'setting.*allowed: \[.*keep_ratio'):
            VPPBackbone(copy.deepcopy(VIT), **bad)
