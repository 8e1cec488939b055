"""The v2 P3B transfer experiment: data, one tiny row end to end, resume."""
import json
import os.path as osp
import re

import numpy as np
import pytest
from script_loader import load_script

from mmsparse.datasets.digits_transfer import (ShiftedDigitsDataset,
                                               render_shifted_digits)

SCRIPT = 'projects/p3b/run_transfer_v2.py'


def test_shifted_digits_sizes_labels_and_determinism():
    train = ShiftedDigitsDataset(split='train', variants=4, shift='target')
    test = ShiftedDigitsDataset(split='test', variants=3, shift='target')
    assert len(train) == 2148 and len(test) == 1077  # one image < 0.1 %
    infos = [test.get_data_info(i) for i in range(len(test))]
    train_digits = {train.get_data_info(i)['digit_index']
                    for i in range(len(train))}
    test_digits = {d['digit_index'] for d in infos}
    assert len(test_digits) == 359 and not train_digits & test_digits
    assert {d['gt_label'] for d in infos} == set(range(5))
    again = ShiftedDigitsDataset(split='test', variants=3, shift='target')
    assert all(np.array_equal(a['img'], again.get_data_info(i)['img'])
               for i, a in enumerate(infos[:20]))
    # variants of one digit differ (random pose and noise)
    assert not np.array_equal(infos[0]['img'], infos[1]['img'])
    source = ShiftedDigitsDataset(classes=(0, 1, 2, 3, 4), test_ratio=0.0)
    assert len(source) == 901
    assert source.get_data_info(0)['img'].shape == (16, 16)


def test_render_shift_inverts_and_rotates():
    digit = np.zeros((1, 8, 8))
    digit[0, :, 3:5] = 16  # a vertical bar
    plain = render_shifted_digits(digit)[0].astype(float)
    turned = render_shifted_digits(digit, base_rotation=90.0,
                                   invert=True)[0].astype(float)
    assert plain[2:14, 7:9].mean() > 200 and plain[7:9, 2:5].mean() < 30
    # rotated by 90 degrees: the bar is horizontal; inverted: dark ink
    assert turned[7:9, 3:13].mean() < 60 and turned[2:5, 7:9].mean() > 200


def test_shifted_digits_bad_arguments():
    with pytest.raises(ValueError, match='ShiftedDigitsDataset: split'):
        ShiftedDigitsDataset(split='val')
    with pytest.raises(ValueError, match='ShiftedDigitsDataset: variants'):
        ShiftedDigitsDataset(variants=0)
    with pytest.raises(ValueError, match='ShiftedDigitsDataset: shift'):
        ShiftedDigitsDataset(shift='rotated')


TINY = [
    '--seeds', '0', '--keep-ratios', '0.5', '--methods', 'P3B-frozen',
    '--source-epochs', '1', '--prune-epochs', '3', '--prune-start', '0',
    '--prune-sparse', '1', '--finetune-epochs', '1', '--jobs', '1', '--val-every', '10',
    '--n-boot', '50', '--probe', 'cheap', '--cfg-options',
    'model.backbone.arch.num_layers=2', 'model.backbone.arch.embed_dims=32',
    'model.backbone.arch.feedforward_channels=64', 'model.head.in_channels=32',
    'train_dataloader.dataset.variants=1', 'train_dataloader.batch_size=64',
    'test_dataloader.dataset.variants=1', 'custom_hooks.0.update_interval=3'
]


def test_tiny_rows_run_and_resume_skips(tmp_path, monkeypatch, capsys):
    rt = load_script(SCRIPT)
    work = str(tmp_path / 'exp')
    rt.main(['--work-dir', work] + TINY)
    rows = {osp.basename(p): json.load(open(p)) for p in
            sorted((tmp_path / 'exp' / 'rows').glob('*.json'))}
    assert set(rows) == {'dense_kr1_s0.json', 'P3B-frozen_kr0.5_s0.json'}
    dense, frozen = rows['dense_kr1_s0.json'], rows['P3B-frozen_kr0.5_s0.json']
    for row in rows.values():
        assert len(row['correct_finetuned']) == 359
        assert abs(100 * np.mean([int(c) for c in row['correct_finetuned']])
                   - row['acc_finetuned']) < 1e-3
    # the benefit run keeps every parameter and logs benefits every update
    hist = json.load(open(osp.join(work, dense['history'])))['history']
    assert dense['global_keep'] == pytest.approx(1.0)
    assert len(hist) == 9 and all(h['benefit_cls'] for h in hist)
    assert all(k == pytest.approx(1.0) for h in hist for k in h['block_keep'])
    # the frozen variant keeps its first budget
    hist = json.load(open(osp.join(work, frozen['history'])))['history']
    assert len(hist) >= 3
    assert all(h['goal_keep'] == hist[0]['goal_keep'] for h in hist)
    assert frozen['global_keep'] == pytest.approx(0.5, abs=0.01)
    assert osp.isfile(osp.join(work, 'results.md'))
    assert osp.isfile(osp.join(work, 'benefit_over_training.png'))

    # every stage ran in a process of its own, its output in logs/
    assert sorted(p.name for p in (tmp_path / 'exp' / 'logs').iterdir()) == [
        'P3B-frozen_kr0.5_s0.log', 'dense_kr1_s0.log', 'source.log']

    # resume: finished rows are skipped (a rerun would fail here)
    def fail(*args, **kwargs):
        raise AssertionError('a finished stage ran again')

    monkeypatch.setattr(rt, 'run_stage', fail)
    capsys.readouterr()
    rt.main(['--work-dir', work] + TINY)
    assert capsys.readouterr().out.count(': finished, skipped') == 2


def test_paired_comparison_uses_shared_stats():
    rt = load_script(SCRIPT)
    digit = [0, 0, 1, 1, 2, 2]
    rows = []
    for seed in (0, 1, 2):
        for method, acc in (('P3B', 50.0 + seed), ('uniform', 40.0 + seed)):
            correct = '110100' if method == 'P3B' else '100100'
            rows.append(dict(method=method, keep_ratio=0.5, seed=seed,
                             acc_pruned=acc, acc_finetuned=acc + 1,
                             correct_pruned=correct,
                             correct_finetuned=correct, digit=digit))
    comp = rt.compare(rows, 0.5, 'P3B', 'uniform', n_boot=200)
    assert comp['acc_pruned']['diff'] == pytest.approx(10.0)
    assert comp['acc_pruned']['method'] == 't'
    boot = comp['acc_finetuned_digits']
    assert boot['method'] == 'paired_bootstrap' and boot['n'] == 3
    assert boot['diff'] == pytest.approx(1 / 6)


def test_dense_rows_are_the_reference_of_every_keep_ratio():
    """The dense benefit run (keep 1) pairs with a method at any keep by
    seed; other references only at the same keep."""
    rt = load_script(SCRIPT)
    digit = [0, 0, 1, 1]

    def row(method, keep, seed, acc, correct):
        return dict(method=method, keep_ratio=keep, seed=seed,
                    acc_pruned=acc, acc_finetuned=acc, digit=digit,
                    correct_pruned=correct, correct_finetuned=correct)

    rows = [row('dense', 1.0, s, 90.0 + s, '1111') for s in (0, 1)]
    rows += [row('uniform', 0.25, s, 80.0 + 2 * s, '1010') for s in (0, 1, 2)]
    comp = rt.compare(rows, 0.25, 'uniform', 'dense', n_boot=100)
    assert comp['seeds'] == [0, 1]  # seed 2 has no dense row
    assert comp['acc_finetuned']['diff'] == pytest.approx(-9.5)
    assert comp['acc_pruned_digits']['diff'] == pytest.approx(-0.5)
    assert rt.compare(rows, 0.5, 'uniform', 'dense', n_boot=100) is None
    assert rt.compare(rows, 0.25, 'uniform', 'P3B', n_boot=100) is None
    assert ('uniform', 'dense') in rt.COMPARISONS


def test_dry_run_prints_plan_status_and_time_left(tmp_path, monkeypatch,
                                                  capsys):
    rt = load_script(SCRIPT)

    def fail(*args, **kwargs):
        raise AssertionError('--dry-run ran a stage')

    for stage in ('source_stage', 'prune_stage', 'finetune_stage',
                  'row_stage', 'run_stage', 'report'):
        monkeypatch.setattr(rt, stage, fail)
    plan = ['--seeds', '0', '1', '--keep-ratios', '0.5', '--methods', 'P3B',
            'uniform', '--jobs', '2', '--dry-run']

    # nothing yet: the README calibration, the work dir is not created
    work = tmp_path / 'exp'
    rt.main(['--work-dir', str(work)] + plan)
    out = capsys.readouterr().out
    assert not work.exists()
    assert 'source stage: not done' in out
    assert out.count('not started') == 6 and 'finished: 0/6 rows' in out
    assert ' dense_kr1_s0: not started (~680 s)' in out
    assert ' uniform_kr0.5_s1: not started (~285 s)' in out
    args = rt.parse_args(['--work-dir', str(work)] + plan)
    assert rt.dry_run(args) == pytest.approx((4 * 680 + 2 * 285) / 2)
    cheap = rt.parse_args(['--work-dir', str(work), '--probe', 'cheap',
                           '--prune-epochs', '25', '--prune-sparse', '20']
                          + plan)
    probes = (680 - 67) / 2 / 2 + 67  # half the epochs, half the cost
    gates = (285 - 67) / 2 + 67
    assert rt.dry_run(cheap) == pytest.approx((4 * probes + 2 * gates) / 2)
    capsys.readouterr()

    # source done, one finished row, two finished pruning stages
    def write(rel, obj):
        path = work / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj))

    write('source/source.json', dict(top1=90.0))
    write('source/source.pth', {})
    write('rows/dense_kr1_s0.json', dict(method='dense', seconds=600.0))
    write('runs/dense_kr1_s0/prune.json', dict(seconds=500.0))
    write('runs/dense_kr1_s1/prune.json', dict(seconds=480.0))
    write('runs/uniform_kr0.5_s1/prune.json', dict(seconds=200.0))
    before = sorted(p for p in work.rglob('*'))
    rt.main(['--work-dir', str(work)] + plan)
    out = capsys.readouterr().out
    assert sorted(p for p in work.rglob('*')) == before
    assert 'source stage: done' in out
    lines = re.findall(r'^ +\d+/6 (\S+): (.*)$', out, re.MULTILINE)
    assert lines == [
        ('dense_kr1_s0', 'finished (600 s)'),
        ('dense_kr1_s1', 'pruning stage finished, fine-tune pending (~100 s)'),
        ('P3B_kr0.5_s0', 'not started (~600 s)'),
        ('P3B_kr0.5_s1', 'not started (~600 s)'),
        ('uniform_kr0.5_s0', 'not started (~285 s)'),
        ('uniform_kr0.5_s1',
         'pruning stage finished, fine-tune pending (~67 s)'),
    ]
    assert 'finished: 1/6 rows' in out
    left = 100 + 600 + 600 + 285 + 67
    assert f'{left:,} row-seconds on 2 job(s) ~ {left / 2:,.0f} s' in out
    assert 'mean of 1 finished rows, 600 s per row, fine-tune 100 s' in out
    # one row left: --jobs cannot split it
    write('rows/P3B_kr0.5_s0.json', dict(method='P3B', seconds=800.0))
    for name in ('dense_kr1_s1', 'P3B_kr0.5_s1', 'uniform_kr0.5_s0',
                 'uniform_kr0.5_s1'):
        write(f'rows/{name}.json', dict(method=name.split('_')[0],
                                        seconds=300.0))
    assert rt.dry_run(args) == 0.0
    (work / 'rows' / 'uniform_kr0.5_s1.json').unlink()
    # no finished gates row kept its prune.json: calibrated fine-tune
    assert rt.dry_run(args) == pytest.approx(67.0)


def test_dry_run_and_report_only_exclusive():
    rt = load_script(SCRIPT)
    with pytest.raises(SystemExit):
        rt.parse_args(['--dry-run', '--report-only'])


def test_a_work_dir_refuses_other_settings(tmp_path, monkeypatch, capsys):
    """The rows' settings lock the work dir (from run_options.json, or the
    first finished row's settings): other values are refused before any
    stage runs, naming the keys."""
    rt = load_script(SCRIPT)
    monkeypatch.setattr(rt, 'run_all', lambda args, argv: None)
    monkeypatch.setattr(rt, 'report', lambda args, rows: None)
    work = tmp_path / 'exp'
    rt.main(['--work-dir', str(work), '--prune-epochs', '30'])
    saved = json.loads((work / 'run_options.json').read_text())
    assert saved['prune_epochs'] == 30 and saved['cfg_options'] == []
    (work / 'rows').mkdir()
    (work / 'rows' / 'dense_kr1_s0.json').write_text(json.dumps(dict(
        method='dense', seconds=600., settings={
            k: v for k, v in saved.items() if k != 'cfg_options'})))
    for argv, said in ((['--prune-epochs', '40'],
                        '--prune-epochs: 30 in the work dir, 40 now'),
                       (['--prune-epochs', '30', '--cfg-options',
                         'train_dataloader.batch_size=16'],
                        "--cfg-options: [] in the work dir, "
                        "['train_dataloader.batch_size=16'] now")):
        with pytest.raises(SystemExit, match='run_transfer_v2.py: error: '
                           'work dir .* other options') as err:
            rt.main(['--work-dir', str(work), '--dry-run'] + argv)
        assert said in str(err.value)
    (work / 'run_options.json').unlink()  # an older work dir: its rows
    with pytest.raises(SystemExit, match='--probe: reference in the work '
                       'dir, cheap now'):
        rt.main(['--work-dir', str(work), '--prune-epochs', '30', '--probe',
                 'cheap'])
    rt.main(['--work-dir', str(work), '--prune-epochs', '30', '--dry-run'])
