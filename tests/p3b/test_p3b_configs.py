"""The P3B configs parse, name registered types and build their parts."""
import glob
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmsparse.registry import HOOKS, TRANSFORMS

CONFIGS = sorted(glob.glob('configs/p3b/*.py') +
                 glob.glob('configs/p3b/toy/*.py'))


def test_all_configs_found():
    assert len(CONFIGS) >= 8


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_parses_and_hook_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.model.backbone.type == 'VisionTransformer'
    hooks = [h for h in cfg.get('custom_hooks', []) if h.type == 'P3BHook']
    if 'dense' in path or 'source' in path:
        assert not hooks
        return
    assert len(hooks) == 1
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        hook = HOOKS.build(hooks[0])
    assert 0 < hook.keep_ratio <= 1
    start, sparse, final = hook.schedule
    assert final <= cfg.train_cfg.max_epochs


def test_cifar100_pipeline_runs_on_an_rgb_array():
    cfg = Config.fromfile('configs/p3b/p3b_deit-small_4xb64-accum2_cifar100.py')
    assert cfg.model.head.num_classes == 100
    assert cfg.optim_wrapper.accumulative_counts == 2
    rng = np.random.default_rng(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        for loader in (cfg.train_dataloader, cfg.val_dataloader):
            data = dict(img=rng.integers(0, 255, (32, 32, 3), np.uint8),
                        gt_label=3)
            for t in loader.dataset.pipeline:
                data = TRANSFORMS.build(t)(data)
            assert tuple(data['inputs'].shape) == (3, 224, 224)
