"""mmsparse.experiment on fake rows: atomic row store, option lock, a run
killed and resumed, the cost model, cfg-options checks and the report."""
import functools
import json
import os

import numpy as np
import pytest
from mmengine.config import Config, DictAction

from mmsparse.experiment import (CostModel, OptionsLock, RowStore,
                                 atomic_write_json, cached_json, cached_score,
                                 check_cfg_options, format_option,
                                 markdown_table, run_rows, seed_mean, tables,
                                 vis, write_report)
from mmsparse.utils.settings import (check_settings, method_parameters,
                                     with_defaults)


def test_atomic_write_leaves_the_old_file_or_the_new_one(tmp_path):
    path = str(tmp_path / 'a' / 'row.json')
    atomic_write_json(path, dict(x=1))
    with pytest.raises(TypeError):  # fails half-way through json.dump
        atomic_write_json(path, dict(x=2, bad=object()))
    assert json.loads(open(path).read()) == dict(x=1)
    assert os.listdir(tmp_path / 'a') == ['row.json']  # no temporary left
    calls = []
    assert cached_json(str(tmp_path / 'c.json'),
                       lambda: calls.append(1) or [1, 2]) == [1, 2]
    assert cached_json(str(tmp_path / 'c.json'), lambda: 1 / 0) == [1, 2]
    assert calls == [1]


def test_row_store(tmp_path):
    store = RowStore(str(tmp_path))
    assert store.all() == [] and not store.done('a')
    store.write('b', dict(name='b'))
    store.write('a', dict(name='a'))
    assert store.finished(['a', 'c']) == {'a'}
    assert [r['name'] for r in store.all()] == ['a', 'b']
    with pytest.raises(ValueError, match='plain file name'):
        store.path('../x')


def _rows(n):
    return [dict(name=f'row{i}', seed=i) for i in range(n)]


def test_a_killed_run_resumes_with_the_unfinished_rows(tmp_path, capsys):
    store = RowStore(str(tmp_path))
    calls = []

    def run_one(row):
        calls.append(row['name'])
        if row['name'] == 'row2' and len(calls) == 3:
            raise KeyboardInterrupt  # the run is killed inside row 2
        return dict(row, value=10 * row['seed'])

    with pytest.raises(KeyboardInterrupt):
        run_rows(_rows(4), store, run_one)
    assert store.finished(r['name'] for r in _rows(4)) == {'row0', 'row1'}
    calls.clear()
    assert run_rows(_rows(4), store, run_one,
                    lambda r: f"value {r['value']}") == ['row2', 'row3']
    assert calls == ['row2', 'row3']
    out = capsys.readouterr().out
    assert 'row0: finished, skipped' in out and 'row3: value 30' in out
    # rows in parallel (threads): every row once, each file complete
    store2 = RowStore(str(tmp_path / 'par'))
    ran = run_rows(_rows(5), store2, lambda row: dict(row, v=1), jobs=2)
    assert sorted(ran) == [f'row{i}' for i in range(5)]
    assert [r['seed'] for r in store2.all()] == list(range(5))


def test_options_lock_refuses_other_options_naming_the_keys(tmp_path):
    work = str(tmp_path / 'w')
    lock = OptionsLock(work, free=('seeds', ))
    current = dict(iters=100, cfg_options={'a.b': [1, 2]}, seeds=[0])
    assert lock.mismatch(current) is None  # a new work dir
    lock.write(current)
    assert lock.mismatch(dict(current, seeds=[0, 1])) is None  # free
    assert lock.mismatch(dict(current, cfg_options={'a.b': (1, 2)})) is None
    error = lock.mismatch(dict(current, iters=200, cfg_options={}))
    assert '--iters: 100 in the work dir, 200 now' in error
    assert '--cfg-options: a.b=[1,2] in the work dir, (none) now' in error
    assert 'Use another --work-dir' in error
    # only a work dir holding rows is locked; a legacy one from its rows
    held = []
    lock2 = OptionsLock(str(tmp_path / 'v'), legacy=lambda: dict(iters=5),
                        holds_work=lambda: bool(held))
    assert lock2.mismatch(dict(iters=6)) is None
    held.append(1)
    assert '--iters: 5 in the work dir, 6 now' in lock2.mismatch(dict(iters=6))


def test_options_lock_defaults_fill_options_added_later(tmp_path):
    """A work dir saved before an option existed ran with its default: the
    default continues it, another value is refused."""
    work = str(tmp_path / 'w')
    OptionsLock(work).write(dict(iters=100))
    lock = OptionsLock(work, defaults=dict(toy='hard'))
    assert lock.saved() == dict(iters=100, toy='hard')
    assert lock.mismatch(dict(iters=100, toy='hard')) is None
    assert '--toy: hard in the work dir, closure now' in lock.mismatch(
        dict(iters=100, toy='closure'))
    assert OptionsLock(work).mismatch(dict(iters=100, toy='hard')) is not None
    # a saved value wins over the default
    OptionsLock(work).write(dict(iters=100, toy='closure'))
    assert lock.mismatch(dict(iters=100, toy='closure')) is None
    # and from a legacy work dir's rows
    legacy = OptionsLock(str(tmp_path / 'v'), legacy=lambda: dict(iters=5),
                         defaults=dict(toy='hard'))
    assert legacy.saved() == dict(iters=5, toy='hard')


def test_cost_model_fits_on_finished_rows():
    cost = CostModel(rate=2.0, fixed=100.)
    assert cost.left([10, 10]) == 240.
    cost.fit([(50., 100, 20.), (150., 100, 40.), (None, 100, 99.)])
    assert cost.fitted_on == 2
    assert cost.rate == pytest.approx(1.0) and cost.fixed == pytest.approx(30.)
    assert cost.predict(10) == pytest.approx(40.)


def test_cfg_options_are_checked_against_the_configs():
    cfg = Config(dict(model=dict(backbone=dict(depth=6, inner=dict(depth=6))),
                      train_cfg=dict(max_iters=3), hooks=[dict(a=1)]))
    configs = {'a.py': cfg}
    assert check_cfg_options({'model.backbone.depth': 4, 'hooks.0.a': 2},
                             configs) is None
    assert "no 'dept' under model.backbone" in check_cfg_options(
        {'model.backbone.dept': 4}, configs)
    assert 'set by the script itself; use --iters' in check_cfg_options(
        {'train_cfg.max_iters': 4}, configs, ('train_cfg', ), 'use --iters')
    moved = check_cfg_options(
        {'model.backbone.x': 1}, configs,
        move=lambda path, key: key.replace('backbone.', 'backbone.inner.'))
    assert 'model.backbone.inner.x is not in a.py' in moved
    for value in (1, 0.5, 'abc', [1, 2], (3, ), [(1, 2), ['a', 'b']]):
        _, text = format_option('k', value).split('=', 1)
        assert DictAction._parse_iterable(text) == value


def test_report_helpers(tmp_path):
    rng = np.random.default_rng(0)
    per_item = [rng.random(50) for _ in range(4)]  # rows a0, a1, b0, b1
    fns = [cached_score(lambda idx, v=v: float(v[idx].mean()))
           for v in per_item]
    everything = np.arange(50)
    assert seed_mean(fns[:2])(everything) == pytest.approx(
        (per_item[0].mean() + per_item[1].mean()) / 2)
    # the paired contrast of groups a and b (seeds 0, 1): the seed-means of
    # the rows' scores on the same draws
    rows = {g: {s: dict(name=f'{g}{s}', seed=s, value=float(per_item[2 * i + s].mean()))
                for s in (0, 1)} for i, g in enumerate('ab')}
    scores = {f'{g}{s}': fns[2 * i + s] for i, g in enumerate('ab') for s in (0, 1)}
    c = tables.contrast(rows['a'], rows['b'], tables.mean_row_scores(scores), 50, 'value',
                        n_boot=200)
    diff = np.mean([per_item[0].mean() - per_item[2].mean(),
                    per_item[1].mean() - per_item[3].mean()])
    assert c['seeds'] == [0, 1]
    assert c['boot']['diff'] == pytest.approx(diff)
    assert c['boot']['low'] <= diff <= c['boot']['high']
    assert c['seed_interval']['n'] == 2 and c['seed_interval']['diff'] == pytest.approx(diff)
    table = markdown_table(['row', 'AP'], [['dense', 1.5], ['vpp', 1.25]])
    assert table == ['| row | AP |', '|---|---|', '| dense | 1.5 |',
                     '| vpp | 1.25 |']
    store = RowStore(str(tmp_path / 'work'))
    store.write('r0', dict(a=1))
    plotted = []
    write_report([str(tmp_path / 'work'), str(tmp_path / 'res')], 'cmp',
                 '\n'.join(table), dict(groups=[1]),
                 plot=lambda path: plotted.append(path) or open(
                     path, 'w').close(), row_files=store.files())
    for out in ('work', 'res'):
        assert (tmp_path / out / 'cmp.md').read_text() == '\n'.join(
            table) + '\n'
        assert json.loads((tmp_path / out / 'cmp.json').read_text()) == dict(
            groups=[1])
        assert (tmp_path / out / 'cmp.png').exists()
    assert (tmp_path / 'res' / 'rows' / 'r0.json').exists()
    assert len(plotted) == 2


def test_train_iters_resumes_or_loads(tmp_path):
    commands = []

    def run(cmd, log):
        commands.append(cmd)
        return 2.0
    work = str(tmp_path / 'row')
    ckpt, took = vis.train_iters(run, 'a.py', work, 10, ['x=1', 'val_cfg=1'],
                                 seed=3, load_from='pre.pth')
    assert ckpt.endswith('iter_10.pth') and took == 2.0
    opts = commands[-1][commands[-1].index('--cfg-options') + 1:]
    assert 'load_from=pre.pth' in opts and 'randomness.seed=3' in opts
    assert 'x=1' in opts and 'val_cfg=1' not in opts
    open(os.path.join(work, 'last_checkpoint'), 'w').close()  # killed run
    vis.train_iters(run, 'a.py', work, 10, [], seed=3, load_from='pre.pth')
    assert '--resume' in commands[-1]
    assert not any(o.startswith('load_from') for o in commands[-1])
    open(os.path.join(work, 'iter_10.pth'), 'w').close()  # finished: cached
    assert vis.train_iters(run, 'a.py', work, 10, [], seed=3)[1] is None
    assert len(commands) == 2


class _Method:

    def __init__(self, model, a: int = 1, b: str = 'x') -> None:
        pass


class _Sub(_Method):

    def __init__(self, model, c: float = 0.5, **kwargs) -> None:
        super().__init__(model, **kwargs)


def test_settings_pass_through_helpers():
    assert method_parameters(_Method, ('model', )) == dict(a=1, b='x')
    assert method_parameters(_Sub, ('model', )) == dict(c=0.5, a=1, b='x')
    part = functools.partial(_Sub, c=0.1)
    assert method_parameters(part, ('model', ))['c'] == 0.1
    assert with_defaults(_Method, dict(b='y'), ('model', )) == dict(a=1, b='y')
    check_settings(_Sub, dict(a=2, c=1.), 'Wrapper', ('model', ))
    with pytest.raises(TypeError, match=r"^Wrapper: unknown setting\(s\) "
                       r"\['model'\] for _Method; \['model'\] are set by "
                       r"Wrapper itself; allowed: \['a', 'b'\]"):
        check_settings(_Method, dict(model=1), 'Wrapper', ('model', ))
