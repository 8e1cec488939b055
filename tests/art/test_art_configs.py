"""The ART configs build: digits variants, paper recipes, VIS configs."""
import glob

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from mmsparse.art import prunable_weights

DIGITS = sorted(glob.glob('configs/art/*smallcnn_digits.py'))
# the ART recipes inherit (and so load) the dense bases
RECIPES = sorted(glob.glob('projects/hypersparse/configs/art_*cifar*.py'))


def test_digits_configs_share_one_base():
    assert len(DIGITS) == 6
    hooks = {}
    for path in DIGITS:
        cfg = Config.fromfile(path)
        assert cfg.train_cfg.max_epochs == 60  # equal budgets
        assert cfg.model.backbone.type == 'SmallConvNet'
        if cfg.get('custom_hooks'):
            assert cfg.param_scheduler is None
            hooks[path] = cfg.custom_hooks[0]
    regs = {h.get('regularizer') for h in hooks.values()
            if h.type == 'ARTHook'}
    assert regs == {'hypersparse', 'l1', 'l2'}
    assert {h.type for h in hooks.values()} == {
        'ARTHook', 'OneShotMagnitudePruningHook',
        'GradualMagnitudePruningHook'
    }


@pytest.mark.parametrize('path', RECIPES)
def test_paper_recipes_build(path):
    cfg = Config.fromfile(path)
    init_default_scope('mmpretrain')
    model = MODELS.build(cfg.model)
    weights = prunable_weights(model)
    total = sum(w.numel() for w in weights.values())
    num_classes = cfg.model.head.num_classes
    if 'resnet32' in path:
        # GraSP's ResNet-32 with doubled widths
        assert total == 1855584 - 1280 + 128 * num_classes
    else:
        assert 20_000_000 < total < 20_100_000  # VGG-19-BN, 512-d head
    hook = cfg.custom_hooks[0]
    assert (hook.lambda_init, hook.eta, hook.warmup) == (5e-6, 1.05, 60)
    assert hook.max_finetune == 160 and cfg.param_scheduler is None
    with torch.no_grad():
        out = model(torch.zeros(2, 3, 32, 32), mode='tensor')
    assert out.shape == (2, num_classes)


@pytest.mark.parametrize('path', [
    'configs/art/art_mask2former_vit_toy-ytvis21.py',
    'configs/art/art_mask2former_vit-s_ytvis21.py'
])
def test_vis_configs_add_the_hook(path):
    cfg = Config.fromfile(path)
    types = [h.type for h in cfg.custom_hooks]
    assert 'ARTHook' in types and 'VISPredictionDrawHook' in types
    hook = cfg.custom_hooks[types.index('ARTHook')]
    assert hook.by_epoch is False and hook.criterion == 'loss'
    assert hook.warmup + hook.interval + hook.min_finetune <= \
        cfg.train_cfg.max_iters
    # the VIS recipes clip gradients: λ·∇R must not shrink the task gradient
    assert cfg.optim_wrapper.clip_grad is not None
    assert hook.clip_regularizer is False
