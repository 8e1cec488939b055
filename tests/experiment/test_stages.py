"""mmsparse.experiment.stages and .classify: cached stages, their seconds,
reusing another work dir's stages, and config overrides (no training)."""
import json
import os

import pytest
from mmengine.config import Config

from mmsparse.experiment import classify, stages


def _tool(calls, writes=()):
    """``run`` that records the command and writes ``writes`` (a tool's
    output files), taking 3 s."""
    def run(cmd, log_file):
        calls.append(cmd)
        for path, text in writes:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, 'w') as f:
                f.write(text)
        return 3.0
    return run


def test_train_and_test_stages_run_once_and_keep_their_seconds(tmp_path):
    times = stages.StageTimes(str(tmp_path / 'seconds.json'))
    work, calls = str(tmp_path / 'a'), []
    marker = os.path.join(work, 'epoch_2.pth')
    run = _tool(calls, [(marker, 'x')])
    assert stages.train_stage(run, 'c.py', work, marker, ['k=1'], times, 'a') == marker
    assert calls[0][1:] == ['tools/train.py', 'c.py', '--work-dir', work, '--cfg-options', 'k=1']
    stages.train_stage(run, 'c.py', work, marker, [], times, 'a')  # finished: skipped
    assert len(calls) == 1
    with pytest.raises(RuntimeError, match='b: training ended without'):
        stages.train_stage(_tool(calls), 'c.py', work, marker + '.x', [], times, 'b')
    metrics = os.path.join(work, 'test', '20260101_000000', '20260101_000000.json')
    run = _tool(calls, [(metrics, json.dumps({'accuracy/top1': 91.5}))])
    cache = os.path.join(work, 'accuracy.json')
    for _ in range(2):
        assert stages.test_stage(run, 'c.py', marker, work, [], cache, times,
                                 'test_a')['accuracy/top1'] == 91.5
    assert [c[1] for c in calls] == ['tools/train.py', 'tools/train.py', 'tools/test.py']
    again = stages.StageTimes(str(tmp_path / 'seconds.json'))
    assert again == dict(a=3.0, b=3.0, test_a=3.0)
    assert again.total(['a', 'test_a']) == 6.0 and again.total(['a', 'c']) is None


def test_reusable_stages_are_checked_then_linked(tmp_path):
    other, work = tmp_path / 'other', tmp_path / 'work'
    (other / 's1').mkdir(parents=True)
    (other / 's1' / 'done.pth').write_text('x')
    (other / 'seconds.json').write_text(json.dumps(dict(s1=5.0, test_s1=1.0, s2=9.0)))
    opts = dict(iters=10, data='d')

    def check(saved, stage=(('s1', ('done.pth', )), )):
        return stages.reusable_stages('--reuse X', str(other), str(work), saved, opts,
                                      ('iters', 'data'), stage)

    with pytest.raises(ValueError, match=r'--reuse X: --iters differs \(there 20, here 10\)'):
        check(dict(opts, iters=20))
    with pytest.raises(ValueError, match='the options its stages were made with are unknown'):
        check(None)
    with pytest.raises(ValueError, match=r'stages not finished there: s2 \(a.pth\)'):
        check(opts, stage=(('s1', ('done.pth', )), ('s2', ('a.pth', ))))
    pairs = check(dict(opts, other=1))  # options the stages do not depend on are free
    times = stages.StageTimes(str(tmp_path / 'seconds.json'))
    stages.link_stages(pairs, times, lambda e: (e, 'test_' + e))
    assert os.readlink(work / 's1') == os.path.join('..', 'other', 's1')
    assert times == dict(s1=5.0, test_s1=1.0)
    assert check(opts) == pairs  # linked before: still fine
    with pytest.raises(ValueError, match='is the --work-dir itself'):
        stages.reusable_stages('--reuse X', str(work), str(work), opts, opts, (), ())


def test_options_go_to_every_config_that_has_them():
    source = Config(dict(model=dict(head=dict(in_channels=64)), hooks=[]))
    method = Config(dict(model=dict(head=dict(in_channels=64)),
                         custom_hooks=[dict(type='P3BHook', update_interval=68)]))
    options = {'model.head.in_channels': 32, 'custom_hooks.0.update_interval': 3}
    configs = dict(source=source, method=method)
    assert classify.check_options(options, configs) is None
    classify.apply_options(source, options)
    classify.apply_options(method, options)
    assert source.model.head.in_channels == method.model.head.in_channels == 32
    assert method.custom_hooks[0].update_interval == 3 and 'custom_hooks' not in source
    assert 'in none of the configs' in classify.check_options({'model.hed.x': 1}, configs)
    assert 'set by the script itself; use --epochs' in classify.check_options(
        {'train_cfg.max_epochs': 1}, configs, ('train_cfg', ), 'use --epochs')
