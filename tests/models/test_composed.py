"""P3B export -> P3BViTPyramid -> VPP (+ ART): the composed VIS model."""
import copy
import os.path as osp
import runpy
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope, init_default_scope
from script_loader import load_script

import mmsparse  # noqa: F401
from mmsparse.art import global_magnitude_masks, prunable_weights
from mmsparse.models.backbones import P3BViTPyramid, VPPBackbone
from mmsparse.models.backbones.p3b_export import write_p3b_export
from mmsparse.models.backbones.vit_pyramid import resize_pos_embed
from mmsparse.p3b import P3BPruner, non_block_params
from mmsparse.registry import DATASETS, HOOKS, MODELS
from mmsparse.utils.composed_benchmark import make_slim_export

CLS_CFG = 'configs/composed/toy/deit-toy_shapes-cls.py'
TOY = 'configs/composed/toy/'
SLIM_VIS = TOY + 'p3b_mask2former_vit_toy-ytvis21.py'
SLIM_VPP_VIS = TOY + 'p3b-vpp_mask2former_vit_toy-ytvis21.py'
ART_VIS = TOY + 'art-p3b-vpp_mask2former_vit_toy-ytvis21.py'


def make_export(out_dir, keep_ratio=0.5, seed=0):
    """A P3B export of the toy classifier, as P3BHook writes it: uniform
    block budget and random element scores (no training), kept widths
    rounded to 8. Returns the export folder and the slim classifier."""
    cfg = Config.fromfile(CLS_CFG)
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        dense = MODELS.build(copy.deepcopy(cfg.model))
        dense.init_weights()
        with torch.no_grad():  # non-trivial norms, biases, positions
            for name, p in dense.named_parameters():
                if 'ln' in name or name.endswith('bias') or 'pos' in name:
                    p.add_(0.1 * torch.randn_like(p))
        pruner = P3BPruner(dense, 4, keep_ratio, 0, 1, 2, 1,
                           non_block_params=non_block_params(dense),
                           block_budget='uniform', width_multiple=8)
        gen = torch.Generator().manual_seed(seed)
        for v in pruner.taylor.values():
            v.copy_(torch.rand(v.shape, generator=gen, dtype=v.dtype))
        pruner.taylor_count = torch.ones((), dtype=torch.float64)
        pruner.finalize(step=1)
        model_cfg = cfg.model.to_dict()
        model_cfg['backbone'].update(type='SlimVisionTransformer',
                                     init_cfg=None,
                                     slim_arch=pruner.slim_arch())
        slim = MODELS.build(copy.deepcopy(model_cfg))
        state = pruner.slim_state_dict(dense)
        slim.load_state_dict(state, strict=True)
        pruner.remove()
    write_p3b_export(str(out_dir), model_cfg, state, pruner.slim_arch(),
                     keep_ratio=pruner.global_keep_ratio())
    return str(out_dir), slim.eval()


@pytest.fixture(scope='module')
def export(tmp_path_factory):
    return make_export(tmp_path_factory.mktemp('p3b') / 'p3b')


def test_slim_backbone_equals_exported_classifier(export):
    """Independent reference: the slim mmpretrain classifier P3B exported."""
    path, slim_cls = export
    ours = P3BViTPyramid(export=path, drop_path_rate=0.0, out_channels=None)
    ours.init_weights()
    ours.eval()
    assert ours.patch_grid == (4, 4)  # the export's pre-training size
    assert ours.slim_arch == slim_cls.backbone.slim_arch
    dense_dims = dict(attn_in=192, attn_head=64, attn_out=192, mlp_in=192,
                      mlp_hidden=768, mlp_out=192)
    assert any(d[k] < dense_dims[k] for d in ours.slim_arch for k in d)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        tokens, hw = ours.embed(x)
        tokens = ours.norm(ours.forward_blocks(tokens, hw))
        expected = slim_cls.backbone(x)[-1]  # cls token after the final LN
    torch.testing.assert_close(tokens[:, 0], expected, rtol=1e-4, atol=1e-4)
    n_slim = sum(p.numel() for p in ours.blocks.parameters())
    assert n_slim == sum(p.numel()
                         for p in slim_cls.backbone.layers.parameters())


def test_position_embedding_interpolated_to_video_grid(export):
    path, slim_cls = export
    video = P3BViTPyramid(export=path, img_size=(48, 80), drop_path_rate=0.0)
    video.init_weights()
    expected = resize_pos_embed(slim_cls.backbone.pos_embed.detach(), (4, 4),
                                (3, 5), 1)
    torch.testing.assert_close(video.pos_embed.detach(), expected)
    outs = video(torch.randn(1, 3, 48, 80))
    assert outs[2].shape[-2:] == (3, 5)
    # the model already on another device (mmengine moves it before
    # init_weights) and the export read to the CPU: no device mix
    on_meta = P3BViTPyramid(export=path, img_size=(48, 80)).to('meta')
    on_meta.load_export_weights()  # what init_weights loads
    assert on_meta.pos_embed.device.type == 'meta'


def test_export_errors(export, tmp_path):
    path, _ = export
    with pytest.raises(FileNotFoundError, match='P3B export: neither'):
        P3BViTPyramid(export=str(tmp_path / 'nothing'))
    with pytest.raises(ValueError, match=r"P3BViTPyramid: \['patch_size'\] "
                       'come from the P3B export'):
        P3BViTPyramid(export=path, patch_size=8)
    # checkpoint alone: the arch must be given, the slim_arch is in its meta
    ckpt = osp.join(path, 'slim_model.pth')
    lone = tmp_path / 'lone'
    lone.mkdir()
    (lone / 'slim_model.pth').write_bytes(open(ckpt, 'rb').read())
    with pytest.raises(ValueError, match='give the dense arch'):
        P3BViTPyramid(export=str(lone))
    arch = dict(embed_dims=192, num_layers=6, num_heads=3,
                feedforward_channels=768)
    model = P3BViTPyramid(export=str(lone / 'slim_model.pth'), arch=arch,
                          img_size=64)
    model.init_weights()
    assert model.slim_arch == P3BViTPyramid(export=path).slim_arch
    # the config alone builds the model (to load a trained composed model)
    cfg_only = tmp_path / 'cfg_only'
    cfg_only.mkdir()
    (cfg_only / 'slim_model.py').write_text(
        open(osp.join(path, 'slim_model.py')).read())
    built = P3BViTPyramid(export=str(cfg_only))
    assert built.slim_arch == model.slim_arch
    with pytest.raises(FileNotFoundError, match='has no slim_model.pth'):
        built.init_weights()
    # weights of another P3B run (other kept widths) are refused
    other, _ = make_export(tmp_path / 'other', keep_ratio=0.3, seed=1)
    mixed = P3BViTPyramid(export=path,
                          checkpoint=osp.join(other, 'slim_model.pth'))
    with pytest.raises(ValueError, match='different P3B runs'):
        mixed.init_weights()


def _data(cfg, root, split):
    loader = cfg.train_dataloader if split == 'train' else \
        cfg.test_dataloader
    ds_cfg = copy.deepcopy(loader.dataset)
    ds_cfg.data_root = root
    return DATASETS.build(ds_cfg)


@pytest.mark.parametrize('config', [SLIM_VIS, SLIM_VPP_VIS])
def test_composed_toy_model_trains_and_predicts(config, export,
                                                toy_ytvis_root):
    path, _ = export
    cfg = Config.fromfile(config)
    if cfg.model.backbone.type == 'VPPBackbone':
        cfg.merge_from_dict({'model.backbone.backbone.export': path})
    else:
        cfg.merge_from_dict({'model.backbone.export': path})
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    slim = model.backbone
    if isinstance(slim, VPPBackbone):
        slim = slim.backbone
    assert isinstance(slim, P3BViTPyramid)
    assert slim.patch_grid == (12, 20)  # interpolated to the toy frames
    # the export's weights are in (a block weight of the export file)
    exported = torch.load(osp.join(path, 'slim_model.pth'),
                          weights_only=False)['state_dict']
    torch.testing.assert_close(
        slim.blocks[2].mlp.fc1.weight.detach(),
        exported['backbone.layers.2.mlp.fc1.weight'])

    model.train()
    train_set = _data(cfg, toy_ytvis_root, 'train')
    data = model.data_preprocessor(
        pseudo_collate([train_set[0], train_set[1]]), training=True)
    losses = model.loss(**data)
    if isinstance(model.backbone, VPPBackbone):
        assert 'loss_vpp_select' in losses
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert slim.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert slim.pos_embed.grad.abs().sum() > 0

    model.eval()
    test_set = _data(cfg, toy_ytvis_root, 'test')
    with torch.no_grad():
        batch = model.data_preprocessor(pseudo_collate([test_set[0]]), False)
        preds = model.predict(**batch)
    frames = preds[0].video_data_samples
    assert len(frames) == len(test_set[0]['data_samples'])
    assert all('pred_track_instances' in f for f in frames)
    if isinstance(model.backbone, VPPBackbone):
        stats = model.backbone.last_stats
        assert stats and stats[-1].pruned and stats[-1].keep_ratio < 0.5


@pytest.mark.parametrize('name', [
    'p3b_mask2former_vit-s_ytvis21.py', 'p3b-vpp_mask2former_vit-s_ytvis21.py',
    'art-p3b-vpp_mask2former_vit-s_ytvis21.py'
])
def test_real_composed_configs_point_at_a_p3b_export(name):
    cfg = Config.fromfile('configs/composed/' + name)
    backbone = cfg.model.backbone
    if 'vpp' in name:
        assert cfg.model.type == 'VPPMask2FormerVideo'
        assert backbone.type == 'VPPBackbone'
        backbone = backbone.backbone
    assert backbone.type == 'P3BViTPyramid' and 'init_cfg' not in backbone
    # the P3B run of configs/p3b exports there (P3BHook export_dir 'p3b')
    assert backbone.export == \
        'work_dirs/p3b_deit-small_4xb256_in1k/p3b'
    assert list(cfg.model.track_head.in_channels) == [96, 192, 384, 384]
    hooks = [h.type for h in cfg.custom_hooks]
    assert ('ARTHook' in hooks) == name.startswith('art')


def test_art_on_composed_model_and_sparse_export(export, tmp_path,
                                                 monkeypatch, capsys):
    """ARTHook's config on the composed model prunes the slim ViT blocks
    only (prune_only), not the patch embedding, VPP's selectors, the pixel
    decoder or the head; a 90 % sparse
    checkpoint of the composed model exports smaller and loads back
    strictly."""
    path, _ = export
    cfg_file = tmp_path / 'art_composed.py'
    cfg_file.write_text(
        f"_base_ = ['{osp.abspath(ART_VIS)}']\n"
        f"model = dict(backbone=dict(backbone=dict(export='{path}')))\n")
    cfg = Config.fromfile(str(cfg_file))
    art = [h for h in cfg.custom_hooks if h.type == 'ARTHook']
    assert len(art) == 1 and art[0].target_sparsity == 0.9
    init_default_scope('mmdet')
    hook = HOOKS.build(copy.deepcopy(art[0]))
    model = MODELS.build(cfg.model)
    model.init_weights()
    weights = prunable_weights(model, hook.exclude,
                               prune_only=hook.prune_only)
    assert 'backbone.backbone.blocks.0.attn.qkv.weight' in weights
    # the ViT blocks only (one global threshold over blocks and head would
    # prune the blocks, whose weights are smaller, to > 99 %)
    assert all(k.startswith('backbone.backbone.blocks.') for k in weights)
    assert not any(k.startswith('backbone.pruner.') for k in weights)
    assert 'backbone.backbone.patch_embed.proj.weight' not in weights
    assert any(k.startswith('backbone.pruner.')
               for k, _ in model.named_parameters())

    masks = global_magnitude_masks({k: w.detach()
                                    for k, w in weights.items()}, 0.9)
    with torch.no_grad():
        for name, w in weights.items():
            w.mul_(masks[name])
    dense_ckpt = tmp_path / 'composed_art.pth'
    torch.save(dict(meta={}, state_dict=model.state_dict()), dense_ckpt)
    out = tmp_path / 'composed_art_sparse.pth'
    tool = 'tools/model_converters/export_sparse_checkpoint.py'
    monkeypatch.setattr(sys, 'argv', [tool, str(dense_ckpt), str(out),
                                      '--config', str(cfg_file)])
    runpy.run_path(tool, run_name='__main__')
    assert 'verified: strict load' in capsys.readouterr().out
    # the export saves at least 80 % of the pruned weights' fp32 bytes
    pruned_bytes = 4 * sum(int((m == 0).sum()) for m in masks.values())
    assert pruned_bytes > 0.1 * osp.getsize(dense_ckpt)
    assert osp.getsize(out) < osp.getsize(dense_ckpt) - 0.8 * pruned_bytes


@pytest.mark.parametrize('name', [
    'deit-toy_shapes-cls.py', 'p3b_deit-toy_shapes-cls.py',
    'cls-init_mask2former_vit_toy-ytvis21.py',
    'p3b_mask2former_vit_toy-ytvis21.py',
    'p3b-vpp_mask2former_vit_toy-ytvis21.py',
    'art-p3b-vpp_mask2former_vit_toy-ytvis21.py'
])
def test_toy_composed_configs_parse(name):
    """Every toy config of the pipeline parses (inheritance, deletes)."""
    cfg = Config.fromfile(TOY + name)
    backbone = cfg.model.backbone
    if backbone.type == 'VPPBackbone':
        backbone = backbone.backbone
    if name.startswith('cls-init'):
        assert backbone.init_cfg.type == 'Pretrained'
    elif 'cls' in name:
        assert backbone.type == 'VisionTransformer'
        assert backbone.arch.embed_dims == 192  # the toy VIS ViT
    else:
        assert backbone.type == 'P3BViTPyramid'
        assert backbone.export == 'work_dirs/composed_toy/p3b_cls/p3b'


@pytest.mark.parametrize('score', ['random', 'magnitude'])
def test_benchmark_makes_slim_export_without_training(score, tmp_path):
    """benchmark_composed.py's slim ViT (made by
    :func:`mmsparse.utils.composed_benchmark.make_slim_export`) goes through
    the export files that P3BViTPyramid reads, at the requested parameter
    budget."""
    vit = Config.fromfile(SLIM_VPP_VIS.replace(
        'composed/toy/p3b-vpp_', 'toy/vpp_')).model.backbone.backbone
    info = make_slim_export(vit.to_dict(), str(tmp_path / 'p3b'), 0.5, score)
    assert abs(info['keep_ratio'] - 0.5) < 0.02
    model = P3BViTPyramid(export=info['out_dir'], img_size=(64, 96))
    model.init_weights()
    assert model.slim_arch == info['slim_arch']
    assert all(d[k] % 8 == 0 for d in model.slim_arch for k in d)
    assert model(torch.randn(1, 3, 64, 96))[2].shape[-2:] == (4, 6)


def test_pipeline_bootstrap_recomputes_ap_on_resampled_videos():
    """AP of a resample (videos drawn with repetition) from the dump the
    pipeline's metric writes; independent reference: evaluate_ytvis."""
    import numpy as np
    import pycocotools.mask as mask_util

    from mmsparse.evaluation.functional.ytvis_ap import evaluate_ytvis
    script = load_script('projects/composed/run_toy_pipeline.py')

    def rle(x0):
        m = np.zeros((8, 8), dtype=np.uint8, order='F')
        m[2:6, x0:x0 + 3] = 1
        r = mask_util.encode(m)
        r['counts'] = r['counts'].decode()
        return r

    videos = [dict(id=i, height=8, width=8, length=2) for i in (11, 12, 13)]
    anns = [dict(id=k + 1, video_id=v['id'], category_id=1, iscrowd=0,
                 segmentations=[rle(1), rle(2)], areas=[12.0, 12.0])
            for k, v in enumerate(videos)]
    gt = dict(videos=videos, annotations=anns,
              categories=[dict(id=1, name='a')])
    preds = [dict(video_id=v, category_id=1, score=0.9,
                  segmentations=[rle(1), rle(2)]) for v in (11, 12)]
    preds.append(dict(video_id=13, category_id=1, score=0.95,
                      segmentations=[rle(5), rle(5)]))  # a miss
    records = script.video_records(dict(gt=gt, predictions=preds))
    score, n = records.score_fn('AP'), records.num_videos
    assert n == 3
    assert score(np.arange(3)) == pytest.approx(
        evaluate_ytvis(gt, preds)['AP'])
    assert score(np.array([0, 1, 0])) == pytest.approx(1.0)
    assert score(np.array([2, 2])) == pytest.approx(0.0)


def test_exported_activation_and_norm_eps_are_used(export, tmp_path):
    path, _ = export
    cfg = Config.fromfile(osp.join(path, 'slim_model.py'))
    cfg.model.backbone.act = 'SiLU'
    cfg.model.backbone.norm_cfg = dict(type='LN', eps=1e-5)
    other = tmp_path / 'p3b'
    other.mkdir()
    cfg.dump(str(other / 'slim_model.py'))
    model = P3BViTPyramid(export=str(other))
    full = [b.mlp for b in model.blocks if b.mlp.mode == 'full']
    assert full and all(isinstance(m.act, torch.nn.SiLU) for m in full)
    assert all(m.norm.eps == 1e-5 for m in full)


def test_uniform_slim_export_is_the_known_bad_p3b_baseline(tmp_path):
    """projects/composed/uniform_slim_export.py: one keep ratio for every
    block at the asked parameter budget, the largest-norm elements of the
    trained classifier, written as a P3B export that P3BViTPyramid and the
    fine-tuning config read."""
    script = load_script('projects/composed/uniform_slim_export.py')
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(CLS_CFG)
    torch.manual_seed(0)
    classifier = MODELS.build(cfg.model)
    classifier.init_weights()
    ckpt = str(tmp_path / 'dense.pth')
    torch.save(dict(state_dict=classifier.state_dict()), ckpt)
    out = str(tmp_path / 'uniform' / 'p3b')
    info = script.make_uniform_export(CLS_CFG, ckpt, out, keep=0.5)
    assert abs(info['keep_ratio'] - 0.5) < 0.02
    arch = info['slim_arch']
    # uniform: every block the same widths, up to the rounding to 8
    for key in arch[0]:
        widths = [d[key] for d in arch]
        assert max(widths) - min(widths) <= 8, (key, widths)
        assert all(w % 8 == 0 for w in widths)
    # magnitude: the kept input channels of every MLP are those with the
    # largest fc1 column norms of the trained classifier
    state = torch.load(osp.join(out, 'slim_model.pth'),
                       weights_only=False)['state_dict']
    for i, layer in enumerate(classifier.backbone.layers):
        norms = layer.ffn.layers[0][0].weight.norm(dim=0)
        top = norms.topk(arch[i]['mlp_in']).indices
        kept = state[f'backbone.layers.{i}.mlp.norm.index']
        assert set(kept.tolist()) == set(top.tolist())
    model = P3BViTPyramid(export=out, img_size=(64, 96))
    model.init_weights()
    assert model.slim_arch == arch
    assert model(torch.randn(1, 3, 64, 96))[2].shape[-2:] == (4, 6)
    finetune = Config.fromfile(osp.join(out, 'finetune.py'))
    assert finetune.load_from == osp.join(out, 'slim_model.pth')
    assert finetune.model.backbone.type == 'SlimVisionTransformer'
    assert finetune.model.backbone.slim_arch == arch
    assert finetune.custom_hooks == []
