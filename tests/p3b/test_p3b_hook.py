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


# ------------------------------------------------------------------ review
def test_resume_of_a_finished_run_evaluates_the_pruned_model(full_run,
                                                             tmp_path):
    """runner.test()/val() right after resuming a finished run must see the
    pruned model, not the dense one."""
    cfg = Config(tiny_cfg(str(tmp_path), HOOK))
    cfg.experiment_name = 'p3b_resume_done'
    cfg.resume = True
    cfg.load_from = osp.join(full_run.work_dir, 'epoch_6.pth')
    runner = Runner.from_cfg(cfg)
    runner.train()  # nothing left to train
    assert p3b_hook(runner).pruner.gated.active
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(
            runner.model.eval()(x, mode='tensor'),
            full_run.model.eval()(x, mode='tensor'))


def test_load_from_loads_weights_only_and_prunes_anew(full_run, tmp_path):
    """A keep-0.25 run started (load_from) from a finished keep-0.5 run
    prunes to 0.25; it must not inherit the finalized gates."""
    hook = dict(HOOK, keep_ratio=0.25)
    cfg = Config(tiny_cfg(str(tmp_path), hook))
    cfg.experiment_name = 'p3b_load_from'
    cfg.load_from = osp.join(full_run.work_dir, 'epoch_6.pth')
    runner = Runner.from_cfg(cfg)
    runner.train()
    pruner = p3b_hook(runner).pruner
    assert len(pruner.history) == len(p3b_hook(full_run).pruner.history)
    assert pruner.history[-1]['global_keep'] == pytest.approx(0.25,
                                                              abs=0.03)


def test_resume_with_another_keep_ratio_fails_before_training(full_run,
                                                              tmp_path):
    cfg = Config(tiny_cfg(str(tmp_path), dict(HOOK, keep_ratio=0.25)))
    cfg.experiment_name = 'p3b_resume_kr'
    cfg.resume = True
    cfg.load_from = osp.join(full_run.work_dir, 'epoch_3.pth')
    runner = Runner.from_cfg(cfg)
    with pytest.raises(ValueError, match='^P3BHook: cannot resume.*'
                       'keep_ratio=0.5.*keep_ratio=0.25.*load_from'):
        runner.train()
    cfg = Config(tiny_cfg(str(tmp_path / 'b'),
                          dict(HOOK, prune_finalize=6)))
    cfg.experiment_name = 'p3b_resume_sched'
    cfg.resume = True
    cfg.load_from = osp.join(full_run.work_dir, 'epoch_3.pth')
    runner = Runner.from_cfg(cfg)
    with pytest.raises(ValueError, match='^P3BHook: cannot resume.*'
                       'schedule'):
        runner.train()
    assert runner.iter == 12  # resumed at epoch 3, not one step further


def test_direct_runner_resume_restores_the_p3b_state(full_run, tmp_path):
    """``runner.resume(path)`` called directly (``resume=False`` in the
    config) continues the pruning run of the checkpoint."""
    cfg = Config(tiny_cfg(str(tmp_path), HOOK))
    cfg.experiment_name = 'p3b_direct_resume'
    runner = Runner.from_cfg(cfg)
    runner.resume(osp.join(full_run.work_dir, 'epoch_3.pth'))
    runner.train()
    a, b = p3b_hook(full_run).pruner, p3b_hook(runner).pruner
    assert [h['step'] for h in b.history] == [h['step'] for h in a.history]
    for ra, rb in zip(a.history[:4], b.history[:4]):  # from the checkpoint
        assert ra == rb
    assert b.finalized


def test_load_checkpoint_under_resume_flag_does_not_restore(full_run,
                                                            tmp_path):
    """``runner.load_checkpoint(path)`` (what ``load_from`` does) takes the
    weights only, even when the config says ``resume=True`` (here with no
    checkpoint to auto-resume from): pruning starts anew at iteration 0."""
    cfg = Config(tiny_cfg(str(tmp_path), HOOK))
    cfg.experiment_name = 'p3b_load_under_resume'
    cfg.resume = True
    runner = Runner.from_cfg(cfg)
    runner.load_checkpoint(osp.join(full_run.work_dir, 'epoch_3.pth'))
    runner.train()
    pruner = p3b_hook(runner).pruner
    assert [h['step'] for h in pruner.history] == [
        h['step'] for h in p3b_hook(full_run).pruner.history]
    assert pruner.finalized


def test_checkpoint_loaded_after_training_takes_effect_before_val(
        full_run):
    """With the pruner built, the P3B state of a loaded checkpoint is
    restored before the next evaluation when the runner continues at the
    checkpoint's iteration (resume), not when it does not (load_from)."""
    import logging
    from types import SimpleNamespace

    from mmsparse.p3b import P3BPruner
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(copy.deepcopy(Config(tiny_cfg('.')).model))
    ckpt = torch.load(osp.join(full_run.work_dir, 'epoch_3.pth'),
                      map_location='cpu', weights_only=False)
    hook = P3BHook(**HOOK)
    hook.pruner = P3BPruner(model, 5, 0.5, 4, 12, 20, 2)
    runner = SimpleNamespace(iter=24, logger=logging.getLogger('p3b_test'))
    hook.after_load_checkpoint(runner, ckpt)
    hook.before_val(runner)  # runner.iter is not the checkpoint's
    assert hook.pruner.history == [] and not hook.pruner.gated.active
    runner.iter = ckpt['meta']['iter']
    hook.after_load_checkpoint(runner, ckpt)
    hook.before_test(runner)
    assert hook.pruner.history == ckpt['p3b']['history']
    assert hook.pruner.gated.active


class _FakeDataset:

    def __init__(self, sample):
        self.sample = sample

    def __getitem__(self, idx):
        return self.sample


def _fake_runner(backbone, sample):
    import logging
    from types import SimpleNamespace
    model = torch.nn.Module()
    model.backbone = backbone
    return SimpleNamespace(
        model=model, logger=logging.getLogger('p3b_test'),
        train_dataloader=SimpleNamespace(dataset=_FakeDataset(sample)))


def _pyramid():
    return MODELS.build(dict(
        type='ViTPyramid', arch=dict(embed_dims=32, num_layers=4,
                                     num_heads=2, feedforward_channels=64),
        img_size=(64, 96), drop_path_rate=0.0, out_channels=16))


def test_models_p3b_cannot_prune_fail_in_before_train_with_advice():
    from mmengine.structures import BaseDataElement, InstanceData
    labelled = dict(inputs=torch.zeros(3, 64, 96),
                    data_samples=BaseDataElement(gt_label=torch.tensor([1])))
    # a VPP-wrapped backbone
    vpp = MODELS.build(dict(type='VPPBackbone', backbone=_pyramid(),
                            smooth_kernel=3))
    with pytest.raises(TypeError, match='^P3BHook: cannot prune '
                       'VPPBackbone.*classification model.*slim ViT.*'
                       'VPPBackbone'):
        P3BHook(num_classes=5).before_train(_fake_runner(vpp, labelled))
    # a video model: ViT backbone, but samples without class labels
    video = dict(inputs=torch.zeros(2, 3, 64, 96),
                 data_samples=BaseDataElement(
                     gt_instances=InstanceData(labels=torch.tensor([0]))))
    runner = _fake_runner(_pyramid(), video)
    with pytest.raises(ValueError, match='^P3BHook: the training samples '
                       'have no class labels.*classification model'):
        P3BHook(num_classes=5).before_train(runner)


def test_hook_errors_start_with_the_class_name():
    for kwargs in (dict(keep_ratio=2), dict(prune_start=9, prune_sparse=3),
                   dict(update_interval=0), dict(block_budget='x'),
                   dict(width_multiple=0), dict(num_classes=1),
                   dict(probe='tiny'), dict(probe_fraction=1.5),
                   dict(probe_window=0)):
        with pytest.raises(ValueError, match='^P3BHook: '):
            P3BHook(**kwargs)


def test_loss_scale_is_read_before_the_step():
    from types import SimpleNamespace
    scaler = torch.amp.GradScaler('cpu', init_scale=2.0**10)
    runner = SimpleNamespace(optim_wrapper=SimpleNamespace(
        loss_scaler=scaler))
    assert float(P3BHook._loss_scale(runner)) == 2.0**10
    scaler.scale(torch.ones(()))  # initialises the scale tensor
    scale = P3BHook._loss_scale(runner)
    scaler._scale.mul_(0.5)  # what update() does after an overflow
    assert float(scale) == 2.0**10
    runner.optim_wrapper = SimpleNamespace()
    assert P3BHook._loss_scale(runner) is None


def test_hook_passes_the_pruner_settings_through():
    """Every P3BPruner default is the pruner's: the hook passes the given
    settings on unchanged; an unknown or hook-filled key names the hook."""
    import inspect

    from mmsparse.p3b import P3BPruner
    hook = P3BHook(num_classes=5, probe='cheap', width_multiple=4)
    assert hook.pruner_kwargs == dict(probe='cheap', width_multiple=4)
    assert inspect.signature(P3BPruner).parameters[
        'width_multiple'].default == 8
    for bad in (dict(probe_lr_typo=1e-3), dict(interval=3)):
        with pytest.raises(TypeError, match=r'^P3BHook: unknown setting.*'
                           r'allowed: \[.*probe_lr'):
            P3BHook(**bad)
