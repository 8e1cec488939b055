import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import mmsparse  # noqa: F401
from mmsparse.models.backbones import ViTPyramid
from mmsparse.models.backbones.vit_pyramid import (convert_vit_state_dict,
                                                   resize_pos_embed)
from mmsparse.registry import MODELS

TOY_CFG = 'configs/toy/mask2former_vit_toy-ytvis21.py'
TINY = dict(embed_dims=64, num_layers=2, num_heads=2, feedforward_channels=128)


@pytest.fixture(scope='module')
def toy_backbone_cfg():
    return Config.fromfile(TOY_CFG).model.backbone


def test_pyramid_shapes_and_strides(toy_backbone_cfg):
    cfg = copy.deepcopy(toy_backbone_cfg)
    model = MODELS.build(cfg)
    model.init_weights()
    x = torch.randn(2, 3, 192, 320)
    outs = model(x)
    assert len(outs) == 4
    for out, stride in zip(outs, (4, 8, 16, 32)):
        assert out.shape == (2, cfg.out_channels, 192 // stride,
                             320 // stride)
    assert model.out_channels == [cfg.out_channels] * 4


def test_pyramid_without_projection():
    model = ViTPyramid(arch=TINY, img_size=64, out_channels=None)
    outs = model(torch.randn(1, 3, 64, 96))
    assert [o.shape[1] for o in outs] == [16, 32, 64, 64]
    assert [o.shape[-1] for o in outs] == [24, 12, 6, 3]


@pytest.mark.parametrize('scope', ['mmdet', 'mmpretrain'])
def test_registered_in_both_scopes(scope):
    name = f'test-vit-scope-{scope}'
    with DefaultScope.overwrite_default_scope(scope):
        DefaultScope.get_instance(name, scope_name=scope)
        model = MODELS.build(
            dict(type='ViTPyramid', arch=TINY, img_size=32, out_channels=8))
    assert isinstance(model, ViTPyramid)


def test_bad_arch_and_values(toy_backbone_cfg):
    cfg = copy.deepcopy(toy_backbone_cfg)
    cfg.arch = 'huge-ish'
    with pytest.raises(ValueError, match=r"unknown arch 'huge-ish'.*small"):
        MODELS.build(cfg)
    with pytest.raises(ValueError, match='misses keys'):
        ViTPyramid(arch=dict(embed_dims=64, num_layers=2))
    with pytest.raises(ValueError, match='drop_path_rate'):
        ViTPyramid(arch=TINY, drop_path_rate=1.5)
    with pytest.raises(ValueError, match='not a multiple of patch_size'):
        ViTPyramid(arch=TINY, img_size=32)(torch.randn(1, 3, 40, 48))


def _our_tokens(model, x):
    tokens, hw = model.embed(x)
    tokens = model.forward_blocks(tokens, hw)
    return model.norm(tokens)


def test_loads_mmpretrain_checkpoint_and_matches_reference(tmp_path):
    """Independent reference: mmpretrain's VisionTransformer itself."""
    from mmpretrain.models import VisionTransformer
    torch.manual_seed(0)
    ref = VisionTransformer(
        arch='deit-tiny', img_size=64, patch_size=16, out_type='raw',
        drop_path_rate=0.0)
    ref.init_weights()
    for p in ref.parameters():  # non-trivial values everywhere
        p.data.add_(torch.randn_like(p) * 0.02)
    ref.eval()
    ckpt = tmp_path / 'deit_tiny_mmpretrain.pth'
    state = {f'backbone.{k}': v for k, v in ref.state_dict().items()}
    state['head.layers.head.weight'] = torch.zeros(10, 192)
    torch.save({'state_dict': state, 'meta': {}}, ckpt)

    ours = ViTPyramid(
        arch='deit-tiny', img_size=64, drop_path_rate=0.0,
        init_cfg=dict(type='Pretrained', checkpoint=str(ckpt)))
    ours.init_weights()
    ours.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = ref(x)[-1]  # (B, 1 + N, C) after the final norm
        got = _our_tokens(ours, x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_loads_timm_checkpoint_and_resizes_pos_embed(tmp_path):
    """Independent reference: timm's DeiT, also at another frame size."""
    import timm
    torch.manual_seed(0)
    ref = timm.create_model(
        'deit_tiny_patch16_224', pretrained=False, img_size=64,
        dynamic_img_size=True)
    for p in ref.parameters():
        p.data.add_(torch.randn_like(p) * 0.02)
    ref.eval()
    ckpt = tmp_path / 'deit_tiny_timm.pth'
    torch.save({'model': ref.state_dict()}, ckpt)  # DeiT release layout

    # same grid: outputs match timm's forward_features
    ours = ViTPyramid(
        arch='tiny', img_size=64, drop_path_rate=0.0,
        init_cfg=dict(type='Pretrained', checkpoint=str(ckpt)))
    ours.init_weights()
    ours.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(
            _our_tokens(ours, x), ref.forward_features(x), rtol=1e-4,
            atol=1e-4)

    # video frame grid 3x5 from a 4x4 checkpoint: pos_embed interpolated
    video = ViTPyramid(
        arch='tiny', img_size=(48, 80), drop_path_rate=0.0,
        init_cfg=dict(type='Pretrained', checkpoint=str(ckpt)))
    video.init_weights()
    expected_pos = resize_pos_embed(ref.pos_embed.detach(), (4, 4), (3, 5),
                                    1)
    torch.testing.assert_close(video.pos_embed.detach(), expected_pos)
    assert video.pos_embed.shape == (1, 1 + 15, 192)
    outs = video(torch.randn(1, 3, 48, 80))
    assert outs[2].shape[-2:] == (3, 5)


def test_convert_mmpretrain_names():
    state = {
        'backbone.layers.0.ln1.weight': 1,
        'backbone.layers.0.ffn.layers.0.0.weight': 2,
        'backbone.layers.0.ffn.layers.1.bias': 3,
        'backbone.patch_embed.projection.weight': 4,
        'backbone.ln1.weight': 5,
        'head.layers.head.weight': 6,
    }
    assert convert_vit_state_dict(state) == {
        'blocks.0.norm1.weight': 1,
        'blocks.0.mlp.fc1.weight': 2,
        'blocks.0.mlp.fc2.bias': 3,
        'patch_embed.proj.weight': 4,
        'norm.weight': 5,
    }


def test_frozen_stages_and_layer_depth():
    model = ViTPyramid(arch=TINY, img_size=32, frozen_stages=1)
    model.train()
    assert not model.patch_embed.proj.weight.requires_grad
    assert not any(p.requires_grad for p in model.blocks[0].parameters())
    assert all(p.requires_grad for p in model.blocks[1].parameters())
    assert model.get_layer_depth('backbone.blocks.1.attn.qkv.weight',
                                 'backbone.') == (2, 4)
    assert model.get_layer_depth('backbone.pos_embed', 'backbone.') == (0, 4)


def test_fused_and_explicit_attention_agree():
    torch.manual_seed(0)
    fused = ViTPyramid(arch=TINY, img_size=32, drop_path_rate=0.0)
    explicit = ViTPyramid(
        arch=TINY, img_size=32, drop_path_rate=0.0, fused_attn=False)
    explicit.load_state_dict(fused.state_dict())
    x = torch.randn(2, 3, 32, 48)
    mask = torch.ones(2, 1 + 6, dtype=torch.bool)
    mask[:, 3] = False
    for m in (None, mask):
        a = fused.blocks[0](fused.embed(x)[0], m)
        b = explicit.blocks[0](explicit.embed(x)[0], m)
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def _no_cls_position_checkpoint(tmp_path):
    """A checkpoint whose pos_embed has no class-token position (timm
    ``no_embed_class``, e.g. DeiT-III): 4x4 grid positions only."""
    torch.manual_seed(0)
    state = ViTPyramid(arch=TINY, img_size=64).state_dict()
    state = {k: v for k, v in state.items() if not k.startswith('pyramid.')}
    state['pos_embed'] = torch.randn(1, 16, TINY['embed_dims'])
    path = tmp_path / 'no_cls_pos.pth'
    torch.save({'model': state}, path)
    return path, state['pos_embed']


def test_pos_embed_without_cls_position_is_resized(tmp_path):
    path, ckpt_pos = _no_cls_position_checkpoint(tmp_path)
    model = ViTPyramid(arch=TINY, img_size=(32, 48),
                       init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    own_cls_pos = model.pos_embed[:, :1].detach().clone()
    model.init_weights()
    torch.testing.assert_close(model.pos_embed[:, :1].detach(), own_cls_pos)
    torch.testing.assert_close(
        model.pos_embed[:, 1:].detach(),
        resize_pos_embed(ckpt_pos, (4, 4), (2, 3), 0))


def test_pos_embed_resize_keeps_the_model_device(tmp_path):
    """mmengine moves the model to the GPU before ``init_weights`` while the
    checkpoint is read to the CPU. With the model on the ``meta`` device a
    CPU/other-device mix raises here as it would on a GPU."""
    path, _ = _no_cls_position_checkpoint(tmp_path)
    model = ViTPyramid(arch=TINY, img_size=(32, 48),
                       init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.to('meta')
    model.init_weights()  # raised 'Tensor on device cpu is not on ... meta'
    assert model.pos_embed.device.type == 'meta'
    assert model.pos_embed.shape == (1, 1 + 6, TINY['embed_dims'])
