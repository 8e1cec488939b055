"""The dense ViT Mask2Former VIS configs: inheritance, build, loss, predict."""
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

import mmsparse  # noqa: F401
from mmsparse.registry import DATASETS, MODELS

DENSE_CFGS = ['configs/mask2former_vit-s_ytvis21.py',
              'configs/mask2former_vit-b_ytvis21.py']
TOY_CFG = 'configs/toy/mask2former_vit_toy-ytvis21.py'


@pytest.mark.parametrize('path', DENSE_CFGS + [TOY_CFG])
def test_config_inherits_mmdet_recipe(path):
    cfg = Config.fromfile(path)
    # inherited from mmdet's YouTube-VIS 2021 recipe, changed where needed
    assert cfg.model.type == 'Mask2FormerVideo'
    assert cfg.model.track_head.type == 'Mask2FormerTrackHead'
    assert cfg.train_dataloader.dataset.dataset_version == '2021'
    assert cfg.model.backbone.type == 'ViTPyramid'
    # the head takes what the backbone's pyramid gives, level by level
    init_default_scope('mmdet')
    bb = copy.deepcopy(cfg.model.backbone)
    bb.init_cfg = None
    assert list(cfg.model.track_head.in_channels) == \
        list(MODELS.build(bb).out_channels)
    assert cfg.val_evaluator.type == 'YouTubeVISAPMetric'
    assert cfg.default_scope == 'mmdet'
    assert cfg.custom_imports.imports == ['mmsparse']


def test_dense_vit_s_builds_with_real_arch():
    cfg = Config.fromfile(DENSE_CFGS[0])
    init_default_scope('mmdet')
    bb = copy.deepcopy(cfg.model.backbone)
    bb.init_cfg = None  # no checkpoint file in the test environment
    model = MODELS.build(bb)
    n_params = sum(p.numel() for p in model.blocks.parameters())
    assert 21e6 < n_params < 22e6  # 12 blocks of ViT-S/16
    assert len(model.blocks) == 12


def _toy_model_and_data(toy_ytvis_root, split):
    cfg = Config.fromfile(TOY_CFG)
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    loader = cfg.train_dataloader if split == 'train' else \
        cfg.test_dataloader
    ds_cfg = copy.deepcopy(loader.dataset)
    ds_cfg.data_root = toy_ytvis_root
    dataset = DATASETS.build(ds_cfg)
    return cfg, model, dataset


def test_toy_loss_backward_on_two_frame_clip(toy_ytvis_root):
    cfg, model, dataset = _toy_model_and_data(toy_ytvis_root, 'train')
    model.train()
    batch = pseudo_collate([dataset[0], dataset[1]])
    data = model.data_preprocessor(batch, training=True)
    inputs = data['inputs']
    assert inputs.dim() == 5 and inputs.shape[1] == 2  # N, T=2 frames
    losses = model.loss(**data)
    assert {'loss_cls', 'loss_mask', 'loss_dice'} <= set(losses)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for p in model.backbone.blocks[0].parameters()]
    assert all(g is not None for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0
    assert model.backbone.pos_embed.grad.abs().sum() > 0


def test_toy_predict_whole_video(toy_ytvis_root):
    cfg, model, dataset = _toy_model_and_data(toy_ytvis_root, 'test')
    model.eval()
    batch = pseudo_collate([dataset[0]])
    with torch.no_grad():
        results = model.test_step(batch)
    assert len(results) == 1
    frames = results[0].video_data_samples
    assert len(frames) == 4  # every frame of the video, in order
    assert [f.frame_id for f in frames] == [0, 1, 2, 3]
    for f in frames:
        pred = f.pred_track_instances
        assert pred.masks.shape[1:] == tuple(f.ori_shape)
        assert len(pred.scores) == len(pred.labels) == len(pred.masks) > 0
        assert int(pred.labels.max()) < 3
