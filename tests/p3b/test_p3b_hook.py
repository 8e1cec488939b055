"""P3BHook in real mmengine Runner runs on a tiny mmpretrain ViT."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner, load_checkpoint

from mmsparse.engine.hooks import P3BHook
from mmsparse.registry import HOOKS, MODELS
from .p3b_helpers import HOOK, p3b_hook, tiny_cfg


def _train(work_dir, hook=HOOK, name='p3b', **kwargs):
    cfg = Config(tiny_cfg(str(work_dir), hook, **kwargs))
    cfg.experiment_name = name
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


@pytest.fixture(scope='module')
def full_run(tmp_path_factory):
    """6 epochs: statistics from 1, goal at 3, slim at 5, one masked epoch."""
    work = tmp_path_factory.mktemp('p3b_full')
    return _train(work, name='p3b_full')


def test_runner_goes_through_all_phases_to_a_slim_checkpoint(full_run):
    runner, hook = full_run, p3b_hook(full_run)
    pruner = hook.pruner
    history = pruner.history
    # 4 iterations per epoch: updates every 2 from iteration 4, final at 20
    assert [h['step'] for h in history] == [5, 7, 9, 11, 13, 15, 17, 19]
    assert history[-1]['finalized'] and history[-1]['tau'] == 0.0
    assert history[0]['global_keep'] > history[2]['global_keep']
    assert history[-1]['global_keep'] == pytest.approx(0.5, abs=0.03)
    assert history[0]['benefit_cls'] is not None
    assert pruner.finalized and pruner.probes is None
    out = osp.join(runner.work_dir, 'p3b')
    for name in ('slim_model.pth', 'slim_model.py', 'finetune.py',
                 'history.json', 'keep_ratio_per_block.png',
                 'param_allocation.png', 'block_benefit.png'):
        assert osp.isfile(osp.join(out, name)), name

    # the config rebuilds the slim model and the checkpoint loads strictly
    slim_cfg = Config.fromfile(osp.join(out, 'slim_model.py'))
    assert slim_cfg.model.backbone.type == 'SlimVisionTransformer'
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        slim = MODELS.build(slim_cfg.model)
    ckpt = load_checkpoint(slim, osp.join(out, 'slim_model.pth'),
                           strict=True)
    assert ckpt['meta']['p3b_slim_arch'] == pruner.slim_arch()
    params = sum(p.numel() for p in slim.parameters())
    dense = sum(p.numel() for p in runner.model.parameters())
    assert params / dense == pytest.approx(0.5, abs=0.03)
    # ... and computes what the masked model computes
    model = runner.model.eval()
    slim.eval()
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(
            slim(x, mode='tensor'), model(x, mode='tensor'), rtol=1e-5,
            atol=1e-5)


def test_checkpoints_keep_dense_keys_and_carry_the_p3b_state(full_run):
    ckpt = torch.load(osp.join(full_run.work_dir, 'epoch_3.pth'),
                      map_location='cpu', weights_only=False)
    assert {'gates', 'ema', 'history', 'probes', 'stats'} <= set(ckpt['p3b'])
    dense = MODELS.build(copy.deepcopy(Config(tiny_cfg('.')).model))
    dense.load_state_dict(ckpt['state_dict'], strict=True)


def test_finetune_config_continues_from_the_slim_checkpoint(
        full_run, tmp_path):
    out = osp.join(full_run.work_dir, 'p3b')
    cfg = Config.fromfile(osp.join(out, 'finetune.py'))
    assert cfg.load_from == osp.join(out, 'slim_model.pth')
    assert not any(h.type == 'P3BHook' for h in cfg.custom_hooks)
    assert cfg.model.backbone.type == 'SlimVisionTransformer'
    assert cfg.model.backbone.arch.embed_dims == 32  # inherited settings
    assert cfg.work_dir == osp.join(full_run.work_dir, 'finetune')
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg.max_epochs = 1
    cfg.experiment_name = 'p3b_ft'
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.val()
    assert 0 <= metrics['accuracy/top1'] <= 100


def test_resume_restores_gates_scores_ema_and_schedule(full_run, tmp_path):
    """Resume the full run from epoch 3 and compare with its epoch 6."""
    cfg = Config(tiny_cfg(str(tmp_path), HOOK))
    cfg.experiment_name = 'p3b_resume'
    cfg.resume = True
    cfg.load_from = osp.join(full_run.work_dir, 'epoch_3.pth')
    runner = Runner.from_cfg(cfg)
    runner.train()
    a, b = p3b_hook(full_run).pruner, p3b_hook(runner).pruner
    assert len(b.history) == len(a.history)
    for ra, rb in zip(a.history, b.history):
        assert ra['step'] == rb['step']
        assert ra['block_keep'] == pytest.approx(rb['block_keep'])
        assert ra['importance'] == pytest.approx(rb['importance'], rel=1e-4)
    for k, g in a.gated.gates.items():
        assert torch.equal(g, b.gated.gates[k]), k
    wa = full_run.model.state_dict()
    for k, v in runner.model.state_dict().items():
        torch.testing.assert_close(v, wa[k], rtol=1e-4, atol=1e-5)


def test_bad_settings_raise_clear_errors(tmp_path):
    for bad in (0, -0.2, 1.01):
        with pytest.raises(ValueError, match='keep_ratio must be'):
            P3BHook(keep_ratio=bad)
    with pytest.raises(ValueError, match='must not come after'):
        P3BHook(prune_start=30, prune_sparse=40, prune_finalize=20)
    with pytest.raises(ValueError, match='element_score'):
        P3BHook(element_score='l1')
    # finalize after the end of training
    with pytest.raises(ValueError, match='after the end of training'):
        _train(tmp_path / 'a', dict(HOOK, prune_finalize=9), 'bad_final',
               max_epochs=6)
    # unsupported model: a CNN backbone
    cfg = tiny_cfg(str(tmp_path / 'b'), HOOK)
    cfg['model']['backbone'] = dict(type='ResNet_CIFAR', depth=18,
                                    num_stages=1, out_indices=(0, ),
                                    strides=(1, ), dilations=(1, ))
    cfg['model']['head']['in_channels'] = 64
    cfg['model']['neck'] = dict(type='GlobalAveragePooling')
    cfg['model']['head']['type'] = 'LinearClsHead'
    runner = Runner.from_cfg(Config(dict(cfg, experiment_name='bad_m')))
    with pytest.raises(TypeError, match='found ResNet_CIFAR'):
        runner.train()


@pytest.mark.parametrize('scope', ['mmdet', 'mmpretrain'])
def test_registered_under_both_scopes(scope):
    with DefaultScope.overwrite_default_scope(scope):
        hook = HOOKS.build(dict(type='P3BHook', keep_ratio=0.3))
        assert isinstance(hook, P3BHook) and hook.keep_ratio == 0.3
        arch = [dict(attn_in=4, attn_head=2, attn_out=5, mlp_in=3,
                     mlp_hidden=0, mlp_out=8)] * 2
        slim = MODELS.build(
            dict(type='SlimVisionTransformer', slim_arch=arch,
                 arch=dict(embed_dims=8, num_layers=2, num_heads=2,
                           feedforward_channels=16), img_size=16,
                 patch_size=8))
        assert slim.layers[0].mlp.mode == 'const'
        out = slim(torch.randn(1, 3, 16, 16))
        assert out[0].shape == (1, 8)
