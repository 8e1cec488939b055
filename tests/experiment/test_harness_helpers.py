"""mmsparse.experiment helpers the drivers share: path options in the lock,
a hook's options by type, the clock and the checked test correctness of an
in-process run, a checkpointed stage's run, the wrapped test config."""
import functools
import json
import os.path as osp
from types import SimpleNamespace

import pytest
from mmengine.config import Config

from mmsparse.experiment import OptionsLock, RowStore, hook_options, items
from mmsparse.experiment.artifacts import CheckpointStages
from mmsparse.experiment.classify import Clock
from mmsparse.experiment.stages import epoch_options
from mmsparse.experiment.store import read_json
from mmsparse.experiment.vis import wrapped_test


def test_path_options_compare_as_paths(tmp_path):
    work = tmp_path / 'work'
    (work / 'rows').mkdir(parents=True)
    (work / 'rows' / 'r.json').write_text('{}')
    lock = OptionsLock(str(work), paths=('data', ), root=str(tmp_path),
                       holds_work=lambda: True)
    lock.write(dict(data='data/a/', seeds=1))
    assert lock.saved()['data'] == str(tmp_path / 'data' / 'a')
    assert lock.mismatch(dict(data=str(tmp_path / 'data' / 'a'), seeds=1)) is None
    assert lock.mismatch(dict(data='data/./a', seeds=1)) is None
    error = lock.mismatch(dict(data='data/b', seeds=1))
    assert f"--data: {tmp_path / 'data' / 'a'} in the work dir, {tmp_path / 'data' / 'b'} now" \
        in error
    assert json.loads((work / 'run_options.json').read_text())['data'] == 'data/a/'
    # without path options the values compare as given
    plain = OptionsLock(str(work), holds_work=lambda: True)
    assert '--data: data/a/ in the work dir' in plain.mismatch(dict(data='data/a', seeds=1))
    assert plain.canonical(dict(data='x')) == dict(data='x')


def test_hook_options_by_type():
    cfg = Config(dict(custom_hooks=[dict(type='A'), dict(type='ARTHook', warmup=1)]))
    assert hook_options(cfg, 'ARTHook', dict(warmup=3, milestones=[1, 2])) == [
        'custom_hooks.1.warmup=3', 'custom_hooks.1.milestones=[1,2]']
    with pytest.raises(ValueError, match="hook_options: no 'GMP' in custom_hooks"):
        hook_options(cfg, 'GMP', {})
    with pytest.raises(ValueError, match='no'):
        hook_options(Config(dict()), 'A', {})
    assert epoch_options(3) == ['train_cfg.max_epochs=3', 'train_cfg.val_interval=3',
                                'default_hooks.checkpoint.interval=3']


def test_clock_counts_from_its_start():
    clock = Clock()
    sum(range(10000))
    assert 0 <= clock.wall() < 60 and 0 <= clock.cpu() < 60
    later = Clock()
    assert later.start >= clock.start


class _Sample:
    def __init__(self, pred, gt):
        import torch
        self.pred_label, self.gt_label = torch.tensor([pred]), torch.tensor([gt])


class _Model:
    def eval(self):
        return self

    def test_step(self, data):
        return [_Sample(p, g) for p, g in data]


class _Dataset(list):
    def get_data_info(self, i):
        return dict(digit_index=self[i][1] // 2)


class _Loader:
    def __init__(self, dataset):
        self.dataset = dataset

    def __iter__(self):
        return iter([list(self.dataset)])  # one batch of (prediction, label)


def test_tested_correctness_checks_runner_test(monkeypatch):
    from mmengine.runner import Runner
    data = _Dataset([(1, 1), (0, 1), (2, 2), (3, 3)])
    monkeypatch.setattr(Runner, 'build_dataloader', staticmethod(lambda cfg: _Loader(data)))
    runner = SimpleNamespace(model=_Model(), cfg=SimpleNamespace(test_dataloader=None),
                             test=lambda: {'accuracy/top1': 75.0})
    out = items.tested_correctness(runner, 'digit_index')
    assert out == dict(top1=75.0, correct='1011', items=[0, 0, 1, 1])
    runner.test = lambda: {'accuracy/top1': 50.0}
    with pytest.raises(RuntimeError, match='per-image accuracy 75.0 != runner.test'):
        items.tested_correctness(runner, 'digit_index')


def _train(row):
    return dict(name=row['name'], trained=True)


def test_checkpoint_stage_run_stamps_the_digest(tmp_path):
    import torch
    store = RowStore(str(tmp_path), 'runs')
    ckpt = str(tmp_path / 'w.pth')
    torch.save(dict(state_dict={'w': torch.ones(2)}), ckpt)
    stages = CheckpointStages(store, functools.partial(lambda path, row: path, ckpt))
    first = stages.run(_train, dict(name='warmup'))
    assert first['trained'] and len(first['weights_sha256']) == 64
    assert 'reproduces_previous' not in first
    store.write('warmup', first)
    again = stages.run(_train, dict(name='warmup'))
    assert again['reproduces_previous'] is True
    assert store.by_name() == dict(warmup=first)
    assert read_json(store.path('warmup')) == first


def test_wrapped_test_writes_the_wrapper_and_runs_the_tool(tmp_path):
    calls = []

    def run(cmd, log):
        calls.append((cmd, log))
        return 2.5

    out, wrapper = str(tmp_path / 'test'), str(tmp_path / 'wrap.py')
    took = wrapped_test(run, '/repo', 'configs/a.py', 'c.pth', out, ['x=1'], 'y = 2\n', wrapper)
    assert took == 2.5 and osp.isdir(out)
    assert open(wrapper).read() == "_base_ = ['/repo/configs/a.py']\ny = 2\n"
    cmd, log = calls[0]
    assert cmd[1:] == ['tools/test.py', wrapper, 'c.pth', '--work-dir', out, '--cfg-options',
                       'x=1']
    assert log == osp.join(out, 'test_stdout.log')
