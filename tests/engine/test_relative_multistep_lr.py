"""RelativeMultiStepLR: LR milestones that follow the run length."""
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import PARAM_SCHEDULERS, DefaultScope
from mmengine.runner import Runner
from vis_helpers import TOY_CONFIG

import mmsparse  # noqa: F401
from mmsparse.engine import RelativeMultiStepLR


def _optimizer():
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)


def _lrs(scheduler, optimizer, steps):
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]['lr'])
        optimizer.step()
        scheduler.step()
    return lrs


def test_milestones_are_fractions_of_the_span():
    opt = _optimizer()
    sched = RelativeMultiStepLR(opt, milestone_fractions=[0.5, 0.75], gamma=0.1, end=80,
                                by_epoch=False)
    assert sorted(sched.milestones) == [40, 60]
    lrs = _lrs(sched, opt, 80)
    assert lrs[39] == 1.0 and lrs[40] == pytest.approx(0.1)
    assert lrs[59] == pytest.approx(0.1) and lrs[60] == pytest.approx(0.01)
    # counted from begin, like MultiStepLR's milestones
    sched = RelativeMultiStepLR(_optimizer(), milestone_fractions=[0.5], begin=20, end=60,
                                by_epoch=False)
    assert sorted(sched.milestones) == [20]


@pytest.mark.parametrize('kwargs, message', [
    (dict(milestone_fractions=[1.2], end=10), 'milestone_fractions must be increasing'),
    (dict(milestone_fractions=[0.6, 0.3], end=10), 'milestone_fractions must be increasing'),
    (dict(milestone_fractions=[], end=10), 'milestone_fractions must be increasing'),
    (dict(milestone_fractions=[0.5]), 'end must be finite'),
    (dict(milestone_fractions=[0.5], begin=10, end=10), 'end must be > begin'),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=f'^RelativeMultiStepLR: {message}'):
        RelativeMultiStepLR(_optimizer(), **kwargs)


@pytest.mark.parametrize('scope', ['mmdet', 'mmpretrain'])
def test_resolves_in_both_scopes(scope):
    with DefaultScope.overwrite_default_scope(scope):
        sched = PARAM_SCHEDULERS.build(
            dict(type='RelativeMultiStepLR', milestone_fractions=[0.25], end=8, by_epoch=False),
            default_args=dict(optimizer=_optimizer()))
    assert isinstance(sched, RelativeMultiStepLR) and sorted(sched.milestones) == [2]


def test_convert_to_iter_based():
    sched = PARAM_SCHEDULERS.build(
        dict(type='RelativeMultiStepLR', milestone_fractions=[0.5], end=4, by_epoch=True,
             convert_to_iter_based=True, epoch_length=10),
        default_args=dict(optimizer=_optimizer()))
    assert not sched.by_epoch and sched.end == 40 and sorted(sched.milestones) == [20]


class _Stop(Exception):
    pass


class _RecordSchedulers(Hook):
    """Records the built schedulers at before_train and stops the run."""
    priority = 'VERY_HIGH'

    def before_train(self, runner):
        self.seen = [(type(s).__name__, s.begin, s.end, sorted(getattr(s, 'milestones', [])))
                     for s in runner.param_schedulers]
        raise _Stop


@pytest.mark.parametrize('max_iters, milestone', [(None, 240), (80, 64)])
def test_toy_config_milestone_follows_max_iters(toy_ytvis_root, tmp_path, max_iters,
                                                milestone):
    # `--cfg-options train_cfg.max_iters=80` used to keep the decay at 240
    cfg = Config.fromfile(TOY_CONFIG)
    options = {f'{dl}.dataset.data_root': toy_ytvis_root
               for dl in ('train_dataloader', 'val_dataloader', 'test_dataloader')}
    if max_iters:
        options['train_cfg.max_iters'] = max_iters
    cfg.merge_from_dict(options)
    cfg.work_dir = str(tmp_path)
    cfg.visualizer = dict(type='DetLocalVisualizer', vis_backends=[])
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    hook = _RecordSchedulers()
    runner.register_hook(hook)
    with pytest.raises(_Stop):
        runner.train()
    run_length = max_iters or 300
    assert hook.seen == [('LinearLR', 0, 30, []),
                         ('RelativeMultiStepLR', 0, run_length, [milestone])]
