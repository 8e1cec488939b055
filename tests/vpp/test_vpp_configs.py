"""The ViT-S VPP configs: the paper's schedules and fine-tuning recipe."""
import pytest
from mmengine.config import Config

from mmsparse.vpp import check_schedule, schedule_pkr

DEFAULT = 'configs/vpp_mask2former_ytvis21.py'
SCHEDULES = {
    # config: (prune_layer, keep_ratio, PKR of a pruned frame)
    DEFAULT: ([1, 3, 6, 9], [0.7, 0.56, 0.448, 0.358], 0.54),
    # the official ViT-Ti 0.4PKR config's published shape
    'configs/vpp_mask2former_ytvis21_pkr0.4.py':
    ([1, 3, 6, 9], [0.6, 0.42, 0.294, 0.206], 0.413),
    'configs/vpp_mask2former_ytvis21_keep0.4.py': (1, 0.4, 0.45),
    'configs/vpp_mask2former_ytvis21_960.py':
    ([1, 3, 6, 9], [0.7, 0.56, 0.448, 0.358], 0.54),
}


@pytest.mark.parametrize('path', sorted(SCHEDULES))
def test_schedules_and_pkr(path):
    layers, ratios, pkr = SCHEDULES[path]
    bb = Config.fromfile(path).model.backbone
    assert bb.type == 'VPPBackbone' and bb.selector == 'temporal'
    assert bb.prune_layer == layers and bb.keep_ratio == ratios
    assert bb.prior_layer == 5  # official prev_x_update_layer
    assert (bb.loss_weight, bb.map_loss_weight) == (40., 10.)
    ratios, layers = check_schedule(ratios, layers, 12)
    assert schedule_pkr(ratios, layers, 12) == pytest.approx(pkr, abs=0.005)
    # on the 23 x 40 grid of 368 x 640 frames, with exact top-k counts
    assert schedule_pkr(ratios, layers, 12, 920) == pytest.approx(
        pkr, abs=0.005)


@pytest.mark.parametrize('path', sorted(SCHEDULES))
def test_paper_fine_tuning_recipe(path):
    cfg = Config.fromfile(path)
    optim = cfg.optim_wrapper
    assert optim.optimizer.type == 'AdamW'
    assert optim.optimizer.lr == 2.5e-5
    assert optim.optimizer.weight_decay == 0.05
    assert optim.clip_grad.max_norm == 0.01
    keys = optim.paramwise_cfg.custom_keys
    assert keys['backbone'].lr_mult == 0.1
    assert keys['backbone.pruner'].lr_mult == 1.0
    # 6 epochs of ~81k key frames at 8 clips/iteration (the official launch:
    # 8 GPUs x 1 clip); step after epoch 4
    assert cfg.train_cfg.type == 'IterBasedTrainLoop'
    assert cfg.train_cfg.max_iters == 60750
    sched = cfg.param_scheduler
    assert sched.type == 'RelativeMultiStepLR' and sched.by_epoch is False
    assert round(sched.milestone_fractions[0] * 60750) == 40500
    assert 'end' not in sched  # the runner sets it to max_iters
    assert cfg.train_dataloader.batch_size == 1
    assert cfg.auto_scale_lr.base_batch_size == 8
    # the official run order of a clip's frames in the backbone
    assert cfg.model.train_frame_order == 'official'
    # 3-frame clips, in the head and in the sampler
    assert cfg.model.track_head.num_frames == 3
    sampler = cfg.train_dataloader.dataset.pipeline[0]
    assert sampler.type == 'UniformRefFrameSample'
    assert sampler.num_ref_imgs == 2


def test_default_config_param_groups():
    """The lr multipliers reach the parameters they are meant for: ViT x0.1,
    the new selectors x1 (the longest matching key wins)."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope

    from mmsparse.registry import MODELS
    cfg = Config.fromfile(DEFAULT)
    init_default_scope('mmdet')
    cfg.model.backbone.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    assert model.backbone.pruner.prune_layers == (1, 3, 6, 9)
    assert model.backbone.num_frames == 3
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    names = {id(p): n for n, p in model.named_parameters()}
    lrs = {}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            lrs[names[id(p)]] = group['lr']
    assert lrs['backbone.pruner.scorers.0.mlp.0.weight'] == pytest.approx(2.5e-5)
    assert lrs['backbone.pruner.scorers.3.mlp.2.weight'] == pytest.approx(2.5e-5)
    assert lrs['backbone.backbone.blocks.4.attn.qkv.weight'] == \
        pytest.approx(2.5e-6)
    assert lrs['track_head.transformer_decoder.layers.0.cross_attn.attn'
               '.in_proj_weight'] == pytest.approx(2.5e-5)
    # the lr step: after 40,500 of 60,750 iterations (the runner sets end)
    from mmengine.registry import PARAM_SCHEDULERS
    sched = PARAM_SCHEDULERS.build(
        dict(cfg.param_scheduler, optimizer=wrapper,
             end=cfg.train_cfg.max_iters))
    assert list(sched.milestones) == [40500]


def test_official_resolution_config():
    """Frames resized to at most 960 x 960 keeping the aspect ratio: a
    720 x 1280 YouTube-VIS frame becomes 540 x 960, padded to 544 x 960 =
    2,040 patches; the default config keeps mmdet's 640 x 360 (padded to
    384 x 640: 960 patches)."""
    import numpy as np
    from mmdet.registry import TRANSFORMS
    from mmdet.utils import register_all_modules
    register_all_modules()
    shapes = {}
    for path in (DEFAULT, 'configs/vpp_mask2former_ytvis21_960.py'):
        cfg = Config.fromfile(path)
        train = cfg.train_dataloader.dataset.pipeline[1]['transforms'][2]
        test = cfg.test_dataloader.dataset.pipeline[0]['transforms'][1]
        val = cfg.val_dataloader.dataset.pipeline[0]['transforms'][1]
        assert train.type == test.type == val.type == 'Resize'
        assert train.scale == test.scale == val.scale
        assert train.keep_ratio and test.keep_ratio
        out = TRANSFORMS.build(dict(test))(
            dict(img=np.zeros((720, 1280, 3), np.uint8)))
        h, w = out['img_shape']
        pad = cfg.model.data_preprocessor.pad_size_divisor
        hp, wp = -(-h // pad) * pad, -(-w // pad) * pad
        shapes[path] = ((h, w), (hp // 16) * (wp // 16))
    assert shapes[DEFAULT] == ((360, 640), 24 * 40)
    assert shapes['configs/vpp_mask2former_ytvis21_960.py'] == (
        (540, 960), 34 * 60)
