"""projects/vpp/run_toy_comparison.py: resumable rows and the report, without training."""
import json
import os.path as osp

import pytest
from script_loader import load_script
from vis_helpers import ROOT, synthetic_video_records


@pytest.fixture(scope='module')
def script():
    return load_script('projects/vpp/run_toy_comparison.py')


QUALITY = dict(dense=0.8, temporal=0.75, image=0.6, random=0.3, truncated=0.7)


def _fake_run_row(calls):
    def run_row(row, args, data_root, pre_ckpt, gt, work):
        calls.append(row['name'])
        records = synthetic_video_records(QUALITY[row['selector']], seed=row['seed'])
        return dict(row, finetune_iters=args.finetune_iters, pretrain_iters=args.pretrain_iters,
                    **records.stats(), pkr=0.5, keep=0.4, fg_recall=0.5, train_seconds=10.,
                    test_seconds=5., records=records.to_dict())
    return run_row


def test_rows_are_resumable_and_reported(script, tmp_path, monkeypatch):
    data = tmp_path / 'data'
    (data / 'annotations').mkdir(parents=True)
    (data / 'annotations' / 'youtube_vis_2021_heldout.json').write_text('{}')
    calls, trained = [], []
    monkeypatch.setattr(script, 'heldout_gt', lambda root: {})
    monkeypatch.setattr(script, 'train',
                        lambda *a, **k: trained.append(a[1]) or ('pre.pth', 1.))
    monkeypatch.setattr(script, 'run_row', _fake_run_row(calls))
    argv = ['--work-dir', str(tmp_path / 'work'), '--results-dir', str(tmp_path / 'res'),
            '--data-root', str(data), '--seeds', '0', '1', '--schedules', 'single',
            '--n-boot', '30']
    script.main(argv)
    expected = [f'{n}_seed{s}' for s in (0, 1)
                for n in ('dense', 'single_temporal', 'single_image', 'single_random')]
    assert calls == expected and len(trained) == 1  # the dense pre-training, once
    rows = sorted(p.name for p in (tmp_path / 'work' / 'rows').iterdir())
    assert rows == sorted(n + '.json' for n in expected)

    # A killed run: two rows lost their done-marker; only they run again.
    (tmp_path / 'work' / 'rows' / 'single_image_seed1.json').unlink()
    (tmp_path / 'work' / 'rows' / 'dense_seed0.json').unlink()
    calls.clear()
    script.main(argv)
    assert calls == ['dense_seed0', 'single_image_seed1']

    table = (tmp_path / 'res' / 'comparison.md').read_text()
    for label in ('| dense |', 'VPP (temporal prior)', 'image-only', 'random'):
        assert label in table
    assert (tmp_path / 'res' / 'comparison.png').exists()
    assert len(list((tmp_path / 'res' / 'rows').iterdir())) == 8
    summary = json.loads((tmp_path / 'res' / 'comparison.json').read_text())
    groups = {g['selector']: g for g in summary['groups']}
    assert groups['dense']['seeds'] == [0, 1] and 'diff_boot' not in groups['dense']
    rnd = groups['random']
    assert rnd['diff_boot']['low'] <= rnd['diff_boot']['diff'] <= rnd['diff_boot']['high']
    assert rnd['diff_boot']['high'] < 0  # much worse than dense, beyond the noise
    assert rnd['diff_seeds']['n'] == 2 and set(rnd['per_seed']) == {'0', '1'}
    assert rnd['diff_boot']['diff'] == pytest.approx(rnd['AP'] - groups['dense']['AP'])
    contrasts = {(c['a'], c['b']) for c in summary['contrasts']}
    assert contrasts == {('temporal', 'image'), ('temporal', 'random')}

    # Diagnostic rows of the dense model cut to its first blocks: reported
    # against dense like a selector, after the pruning rows.
    calls.clear()
    script.main(argv + ['--truncate', '2'])
    assert calls == ['trunc2_seed0', 'trunc2_seed1']
    table = (tmp_path / 'res' / 'comparison.md').read_text()
    assert 'ViT cut to its first 2 of 6 blocks' in table
    summary = json.loads((tmp_path / 'res' / 'comparison.json').read_text())
    assert [g['schedule'] for g in summary['groups']][-1] == 'trunc2'
    assert summary['groups'][-1]['diff_seeds']['n'] == 2
    with pytest.raises(SystemExit):
        script.main(argv + ['--truncate', '6'])

    # --dry-run and --report-only do not run anything.
    calls.clear()
    script.main(argv + ['--dry-run'])
    script.main(argv + ['--report-only'])
    assert calls == []


def test_plan_rows(script):
    class Args:
        seeds = [0, 1, 2]
        schedules = ['paper', 'single']
        selectors = ['temporal', 'image', 'random']
        truncate = [1, 3]
    rows = script.plan_rows(Args)
    names = [r['name'] for r in rows]
    assert len(names) == len(set(names)) == 3 * 9
    cut = [r for r in rows if r['selector'] == 'truncated']
    assert {r['name'] for r in cut} == {f'trunc{k}_seed{s}' for k in (1, 3) for s in (0, 1, 2)}
    assert {r['config'] for r in cut} == {script.DENSE}
    assert {o for r in cut for o in r['options']} == {
        'model.backbone.arch.num_layers=1', 'model.backbone.arch.num_layers=3'}
    paper = [r for r in rows if r['schedule'] == 'paper']
    assert {r['config'] for r in paper} == {script.SCHEDULES['paper']['config']}
    assert {o for r in paper for o in r['options']} == {
        f'model.backbone.selector={s}' for s in Args.selectors}
    for r in rows:
        assert osp.exists(osp.join(ROOT, r['config']))
