"""mmsparse.experiment on fake rows, the parts the drivers share beyond the
store and the lock: rows in worker processes, paired contrasts and tables,
per-item records, what a row leaves in its work dir, plan listing, plots."""
import json
import os

import numpy as np
import pytest
import torch
from vis_helpers import synthetic_video_records

from mmsparse.experiment import (RowStore, artifacts, items, markdown_table,
                                 plan, plots, run_rows, tables)
from mmsparse.experiment.runner import parallel_map
from mmsparse.utils.stats import paired_bootstrap, paired_seed_interval


def _pid_row(row):
    """A row whose result names the process that ran it."""
    if row['name'] == 'bad':
        raise ValueError('bad row')
    return dict(name=row['name'], pid=os.getpid(), value=2 * row['seed'])


def _brief(result):
    return f"value {result['value']}"


def test_rows_in_worker_processes(tmp_path, capfd):
    store = RowStore(str(tmp_path), 'runs')
    rows = [dict(name=f'r{i}', seed=i) for i in range(4)]
    store.write('r1', dict(name='r1', pid=0, value=-1))
    ran = run_rows(rows, store, _pid_row, _brief, jobs=2, processes=True,
                   line='[done] {text}', skipped=None)
    assert ran == ['r0', 'r2', 'r3']  # plan order, r1 was finished
    results = {r['name']: r for r in store.all()}
    assert results['r1']['value'] == -1
    assert {results[n]['value'] for n in ran} == {0, 4, 6}
    assert all(results[n]['pid'] != os.getpid() for n in ran)  # forked
    out = capfd.readouterr().out
    assert '[done] value 4' in out and 'r1' not in out  # no skip line
    # todo decides what runs: here a finished row again
    assert run_rows(rows, store, _pid_row, todo=lambda r: r['name'] == 'r1',
                    skipped='{name}: kept') == ['r1']
    assert store.read('r1')['value'] == 2
    assert 'r0: kept' in capfd.readouterr().out
    # a failing row: the others submitted still finish, then the error
    with pytest.raises(ValueError, match='bad row'):
        parallel_map(_pid_row, [dict(name='bad', seed=0),
                                dict(name='ok', seed=1)], 2, processes=True)
    assert parallel_map(str, [], 2, processes=True) == []
    # a single row with processes still runs in a worker
    assert parallel_map(_pid_row, [dict(name='x', seed=0)], 2,
                        processes=True)[0]['pid'] != os.getpid()
    assert parallel_map(lambda x: x * x, range(5), 3) == [0, 1, 4, 9, 16]


def _rows(values, method):
    return [dict(name=f'{method}_seed{s}', method=method, seed=s, AP=v)
            for s, v in values.items()]


def test_groups_contrast_and_seed_helpers():
    rows = _rows({0: 0.5, 1: 0.7, 2: 0.6}, 'a') + _rows({0: 0.4, 2: 0.5}, 'b')
    groups = tables.by_seed(rows, 'method')
    assert list(groups) == ['a', 'b'] and sorted(groups['b']) == [0, 2]
    by_pair = tables.by_seed(rows, lambda r: (r['method'], r['seed'] > 0))
    assert set(by_pair) == {('a', False), ('a', True), ('b', False),
                            ('b', True)}
    assert tables.paired_seeds(groups['a'], groups['b']) == [0, 2]
    assert tables.seed_means(groups['a'], ['AP']) == pytest.approx(
        dict(AP=0.6))
    assert tables.mean_std([1.0]) == (1.0, 0.0)
    assert tables.mean_std([1.0, 3.0]) == pytest.approx((2.0, 2 ** 0.5))
    rng = np.random.default_rng(0)
    per_item = {r['name']: rng.random(30) for r in rows}
    scores = {n: (lambda idx, v=v: float(v[idx].mean()))
              for n, v in per_item.items()}
    c = tables.contrast(groups['a'], groups['b'],
                        tables.mean_row_scores(scores), 30, 'AP', n_boot=50,
                        per_seed=True)
    assert c['seeds'] == [0, 2]
    mean = (lambda names: lambda idx: float(np.mean(
        [scores[n](idx) for n in names])))
    assert c['boot'] == paired_bootstrap(
        mean(['a_seed0', 'a_seed2']), mean(['b_seed0', 'b_seed2']), 30,
        n_boot=50)
    assert c['seed_interval'] == paired_seed_interval([0.5, 0.6], [0.4, 0.5])
    assert c['per_seed'][2] == paired_bootstrap(
        scores['a_seed2'], scores['b_seed2'], 30, n_boot=50)
    # the number of items may come from the rows
    c2 = tables.contrast(groups['a'], groups['b'],
                         tables.mean_row_scores(scores),
                         lambda row: len(per_item[row['name']]), 'AP',
                         n_boot=50)
    assert c2['boot'] == c['boot'] and 'per_seed' not in c2
    assert tables.contrast(groups['a'], {}, None, 30, 'AP') is None


def test_complete_seeds_seconds_and_without():
    planned = [dict(name=f'{m}_seed{s}', seed=s) for s in (0, 1)
               for m in ('a', 'b')]
    assert tables.complete_seeds(planned, {'a_seed0', 'b_seed0',
                                           'a_seed1'}) == [0]
    assert tables.complete_seeds(planned, []) == []
    rows = [dict(train_seconds=10.04, test_seconds=1.0, records=[1]),
            dict(train_seconds=None, test_seconds=2.0, records=[2])]
    assert tables.seconds_total(rows) == 13.0
    assert tables.without(rows) == [
        dict(train_seconds=10.04, test_seconds=1.0),
        dict(train_seconds=None, test_seconds=2.0)]


def test_markdown_table_alignment():
    assert markdown_table(['m', '90 %'], [['a', 1]], align='lr') == [
        '| m | 90 % |', '|---|---:|', '| a | 1 |']


def test_item_means_pool_images_of_an_item_and_rows():
    # items 7 and 3, two images each (in dataset order 7, 3, 7, 3)
    rows = [dict(correct='1100', items=[7, 3, 7, 3]),
            dict(correct='1010', items=[7, 3, 7, 3])]
    # sorted items: 3 -> (1,0) + (0,0) / 4 ; 7 -> (1,0) + (1,1) / 4
    assert items.item_means(rows, 'correct', 'items').tolist() == [0.25, 0.75]
    score = items.item_mean_score('correct', 'items')(rows)
    assert score(np.array([0, 1])) == 50.0
    assert score(np.array([1, 1])) == 75.0
    assert items.timings(12.34, 5.67) == dict(train_seconds=12.3,
                                              test_seconds=5.7)
    assert items.timings(None, 1.0)['train_seconds'] is None


class _Sample:

    def __init__(self, pred, gt):
        self.pred_label = torch.tensor([pred])
        self.gt_label = torch.tensor([gt])


class _Model(torch.nn.Module):

    def test_step(self, data):
        return [_Sample(int(x) % 2, 0) for x in data]


class _Images(torch.utils.data.Dataset):

    def __len__(self):
        return 5

    def __getitem__(self, i):
        return i

    def get_data_info(self, i):
        return dict(digit_index=i // 2)


def test_image_correctness_in_dataset_order():
    runner = type('R', (), {'model': _Model()})()
    loader = dict(dataset=_Images(), batch_size=2, num_workers=0,
                  sampler=dict(type='DefaultSampler', shuffle=False),
                  collate_fn=dict(type='pseudo_collate'))
    out = items.image_correctness(runner, loader, 'digit_index')
    assert out['correct'] == '10101' and out['accuracy'] == 60.0
    assert out['items'] == [0, 0, 1, 1, 2]
    assert 'items' not in items.image_correctness(runner, loader)


def test_video_scores_and_scored_test(tmp_path, monkeypatch):
    from mmsparse.evaluation.functional.ytvis_bootstrap import \
        YTVISVideoRecords
    recs = {name: synthetic_video_records(q, seed=i, num_videos=12)
            for i, (name, q) in enumerate((('a', 0.8), ('b', 0.3)))}
    rows = [dict(name=n, records=r.to_dict()) for n, r in recs.items()]
    records, scores = items.video_scores(rows)
    assert scores['a'](np.arange(12)) == pytest.approx(recs['a'].stats()['AP'])
    assert scores['b'](np.zeros(12, int)) == pytest.approx(
        recs['b'].stats(np.zeros(12, int))['AP'])
    assert records['b'].num_videos == 12
    evaluator = dict(ap=round(recs['a'].stats()['AP'], 3))

    def run(cmd, log):  # what tools/test.py writes
        out = cmd[cmd.index('--work-dir') + 1]
        os.makedirs(os.path.join(out, 'stamp'), exist_ok=True)
        with open(os.path.join(out, 'stamp', 'm.json'), 'w') as f:
            json.dump({'youtube_vis/segm_mAP': evaluator['ap']}, f)
        with open(os.path.join(out, 'predictions.json'), 'w') as f:
            json.dump([], f)
        return 3.0

    monkeypatch.setattr(YTVISVideoRecords, 'from_predictions',
                        staticmethod(lambda gt, predictions: recs['a']))
    metrics, got, stats, took = items.scored_video_test(
        run, str(tmp_path), 'c.py', 'x.pth', str(tmp_path / 'row'), [], {},
        'row')
    assert got is recs['a'] and stats['AP'] == recs['a'].stats()['AP']
    assert took == 3.0 and metrics['youtube_vis/segm_mAP'] == evaluator['ap']
    evaluator['ap'] += 0.01
    with pytest.raises(RuntimeError, match='row: AP from the saved'):
        items.scored_video_test(run, str(tmp_path), 'c.py', 'x.pth',
                                str(tmp_path / 'row2'), [], {}, 'row')


def test_checkpoint_digest_sparsity_and_pruning_state(tmp_path):
    ckpt = str(tmp_path / 'a.pth')
    weights = {'w': torch.tensor([0., 1., 0., 2.]), 'v': torch.ones(2)}
    masks = {'w': torch.tensor([0., 1., 0., 1.])}
    torch.save(dict(state_dict=weights, art_state=dict(masks=masks,
                                                       switch_unit=3)), ckpt)
    digest = artifacts.weights_digest(ckpt)
    torch.save(dict(state_dict=weights), str(tmp_path / 'b.pth'))
    assert artifacts.weights_digest(str(tmp_path / 'b.pth')) == digest
    torch.save(dict(state_dict={'w': weights['w'] + 1, 'v': weights['v']}),
               str(tmp_path / 'c.pth'))
    assert artifacts.weights_digest(str(tmp_path / 'c.pth')) != digest
    assert artifacts.weight_sparsity(weights) == dict(
        prunable_weights=6, zero_weights=2, final_sparsity=2 / 6)
    state, info = artifacts.pruning_state(ckpt, 'art_state')
    assert state['switch_unit'] == 3
    assert info == dict(sparsity=0.5, zero_share=0.5, prunable_weights=4,
                        pruned_weights=2, zero_weights=2)
    with pytest.raises(RuntimeError, match='no masks under "gmp": the run'):
        artifacts.pruning_state(ckpt, 'gmp')


def test_logged_scalars_of_a_resumed_training(tmp_path):
    for stamp, its in (('1', (10, 20)), ('2', (20, 30))):
        vis = tmp_path / stamp / 'vis_data'
        vis.mkdir(parents=True)
        lines = [dict(iter=i, lr=0.1, reg=int(stamp) * i) for i in its]
        lines.append(dict(iter=40, lr=0.1))  # no 'reg': left out
        (vis / 'scalars.json').write_text('\n'.join(map(json.dumps, lines)))
    log = artifacts.logged_scalars(str(tmp_path), 'reg', ('reg', 'missing'))
    assert log == [dict(iter=10, reg=10, missing=None),
                   dict(iter=20, reg=40, missing=None),  # the later run's
                   dict(iter=30, reg=60, missing=None)]


def test_checkpoint_stages_rerun_when_the_checkpoint_is_missing(
        tmp_path, capsys):
    store = RowStore(str(tmp_path / 'out'), 'runs')
    ckpt = str(tmp_path / 'work' / 'warm.pth')
    stages = artifacts.CheckpointStages(
        store, lambda row: ckpt if row['kind'] == 'warmup' else None,
        tag='warmup', what='warm-up')
    warm, main = dict(name='w', kind='warmup'), dict(name='m', kind='main')
    assert stages.todo(warm) and stages.todo(main)  # no files
    store.write('m', dict(name='m'))
    store.write('w', dict(name='w'))
    assert not stages.todo(main)
    assert stages.todo(warm)  # file, but no checkpoint (a new work dir)
    assert 'w: ' + ckpt + ' is missing (new work dir?); running the ' \
        'warm-up again' in capsys.readouterr().out
    os.makedirs(os.path.dirname(ckpt))
    torch.save(dict(state_dict={'x': torch.ones(2)}), ckpt)
    assert not stages.todo(warm)  # back-fills the digest of an old file
    first = store.read('w')['weights_sha256']
    assert first == artifacts.weights_digest(ckpt)
    same = stages.stamp(warm, dict(name='w'), store.read('w'))
    assert same['reproduces_previous'] and same['weights_sha256'] == first
    torch.save(dict(state_dict={'x': torch.zeros(2)}), ckpt)
    other = stages.stamp(warm, dict(name='w'), store.read('w'))
    assert other['reproduces_previous'] is False
    assert '[warmup] WARNING w: the re-run warm-up differs' in \
        capsys.readouterr().out
    assert stages.stamp(main, dict(name='m'), {}) == dict(name='m')
    assert stages.previous(dict(name='none')) == {}


def test_rows_lock_and_listing(tmp_path, capsys):
    store = RowStore(str(tmp_path))
    held = []
    lock = plan.rows_lock(store, legacy=lambda first: dict(iters=first['it']),
                          holds_work=lambda: bool(held))
    assert plan.first_row(store) is None
    assert lock.mismatch(dict(iters=5)) is None  # new work dir
    store.write('b', dict(it=7))
    store.write('a', dict(it=4))
    assert plan.first_row(store) == dict(it=4)
    assert '--iters: 4 in the work dir, 5 now' in lock.mismatch(dict(iters=5))
    lock.write(dict(iters=5))  # the file wins over the rows
    assert lock.mismatch(dict(iters=5)) is None
    empty = plan.rows_lock(RowStore(str(tmp_path / 'e')),
                           holds_work=lambda: bool(held))
    empty.write(dict(iters=1))
    assert empty.mismatch(dict(iters=2)) is None  # holds nothing
    held.append(1)
    assert empty.mismatch(dict(iters=2)) is not None  # a checkpoint
    plan.print_rows([dict(name='a'), dict(name='c')], {'a'},
                    lambda r: r['name'].upper())
    assert capsys.readouterr().out == 'done  a  A\ntodo  c  C\n'


def test_plot_parts(tmp_path):
    plt = plots.pyplot()
    fig, ax = plt.subplots()
    nan = float('nan')
    bars = plots.interval_errorbar(
        ax, [0, 1], [dict(diff=0.1, low=0.05, high=0.2),
                     dict(diff=0.3, low=nan, high=nan)], scale=100, fmt='o')
    (seg, ) = bars.lines[2]
    spans = [s[:, 1].tolist() for s in seg.get_segments()]
    assert spans[0] == pytest.approx([5.0, 20.0])
    assert spans[1] == pytest.approx([30.0, 30.0])  # no interval: no bar
    (dots, ) = plots.seed_dots(ax, 2, [dict(diff=0.1), dict(diff=0.2)],
                               scale=10, color='C1')
    assert dots.get_ydata().tolist() == pytest.approx([1.0, 2.0])
    assert dots.get_alpha() == 0.5
    assert plots.dodge(1, 0, 3, 0.25) == 0.75
    assert plots.dodge(1, 2, 3, 0.25) == 1.25
    plots.category_axis(ax, ['x', 'y', 'z'], fontsize=8)
    assert [t.get_text() for t in ax.get_xticklabels()] == ['x', 'y', 'z']
    path = plots.save_figure(fig, str(tmp_path / 'p.png'))
    assert os.path.getsize(path) > 0 and not plt.get_fignums()


def test_stage_status_lines_and_units_left(capsys):
    stages = dict(warmup=[dict(name='w0', it=5)],
                  main=[dict(name='m0', it=10), dict(name='m1', it=20)])
    left = plan.stage_status(stages, {'w0', 'm0'}, lambda r: r['it'], 'runs')
    assert left == 20
    assert capsys.readouterr().out == ('warmup: 1 of 1 runs finished\n'
                                       'main: 1 of 2 runs finished; next: '
                                       'm1\n')
