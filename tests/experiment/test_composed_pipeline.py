"""projects/composed/run_toy_pipeline.py on the experiment harness: its plan
(rows, names), resumable rows and the report from fake rows, the option
lock, --dry-run, and the committed results re-rendered (no training)."""
import json
import os.path as osp
import shutil

import pytest
from script_loader import load_script
from vis_helpers import ROOT, synthetic_video_records

SCRIPT = 'projects/composed/run_toy_pipeline.py'
RESULTS = osp.join(ROOT, 'projects', 'composed', 'results')
QUALITY = dict(dense=0.8, slim=0.78, slim_uniform=0.7, slim_vpp=0.76, slim_vpp_art=0.3)


@pytest.fixture(scope='module')
def script():
    return load_script(SCRIPT)


def test_plan_rows_and_names(script):
    _, args = script.parse_args(['--seeds', '0', '2'])
    rows = script.plan_rows(args)
    names = [r['name'] for r in rows]
    assert names[0] == 'classifiers' and len(names) == len(set(names)) == 1 + 2 * 5
    assert names[1:6] == [f'vis_{k}_seed0' for k in
                          ('dense', 'slim', 'slim_uniform', 'slim_vpp', 'slim_vpp_art')]
    iters = {r['kind']: r['iters'] for r in rows[1:]}
    assert iters == dict(dense=450, slim=450, slim_uniform=450, slim_vpp=150, slim_vpp_art=300)
    _, args = script.parse_args(['--no-uniform', '--art-iters', '0'])
    kinds = [r['kind'] for r in script.plan_rows(args)]
    assert kinds == ['classifiers', 'dense', 'slim', 'slim_vpp']
    for config in script.VIS.values():
        assert osp.exists(osp.join(ROOT, config))


def _fake_rows(script, monkeypatch, calls):
    def run_row(self, row):
        calls.append(row['name'])
        if row['kind'] == 'classifiers':
            return dict(row, classifier_top1=dict(dense=95.0, slim=96.0, slim_uniform=94.0),
                        p3b_keep_ratio=0.5)
        records = synthetic_video_records(QUALITY[row['kind']], seed=row['seed'])
        result = dict(row, **records.stats(), records=records.to_dict(), train_seconds=10.,
                      test_seconds=5.)
        if row['kind'] == 'slim_vpp_art':
            result['sizes'] = dict(sparse_file=5 * 2**20, art_state_dict=8 * 2**20,
                                   dense_row_state_dict=10 * 2**20)
        return result
    monkeypatch.setattr(script.Pipeline, 'run_row', run_row)
    monkeypatch.setattr(script.Pipeline, 'make_data', lambda self: None)


def test_rows_resume_and_report(script, tmp_path, monkeypatch, capsys):
    calls = []
    _fake_rows(script, monkeypatch, calls)
    work, res = tmp_path / 'work', tmp_path / 'res'
    argv = ['--work-dir', str(work), '--results-dir', str(res), '--seeds', '0', '1',
            '--n-boot', '30']
    script.main(argv)
    planned = [r['name'] for r in script.plan_rows(script.parse_args(argv)[1])]
    assert calls == planned
    assert sorted(p.name for p in (work / 'rows').iterdir()) == sorted(
        n + '.json' for n in planned)
    # a killed run: the rows without a file run again, the others not
    (work / 'rows' / 'vis_slim_seed1.json').unlink()
    calls.clear()
    script.main(argv)
    assert calls == ['vis_slim_seed1']
    table = (res / 'results.md').read_text()
    assert table == (work / 'results.md').read_text()
    for label in script.LABELS.values():
        assert f'| {label} |' in table
    assert 'Checkpoint: sparse export 5.00 MiB' in table
    summary = json.loads((res / 'results.json').read_text())
    assert summary['args']['seeds'] == [0, 1] and set(summary['ap']['dense']) == {'0', '1'}
    art = summary['bootstrap_seed_mean']['slim_vpp_art-dense']
    assert art['high'] < 0 and art['n'] == 40  # much worse than dense, beyond the noise
    assert summary['seed_intervals']['slim-dense']['n'] == 2
    assert set(summary['bootstrap']['slim-dense']) == {'0', '1'}
    assert len(list((res / 'rows').iterdir())) == len(planned)
    # the report from the rows alone (e.g. the results dir) is the same
    shutil.rmtree(work)
    capsys.readouterr()
    script.main(['--work-dir', str(res), '--report-only', '--n-boot', '30'])
    assert (res / 'results.md').read_text() == table
    assert calls == ['vis_slim_seed1']


def test_options_lock_and_dry_run(script, tmp_path, monkeypatch, capsys):
    calls = []
    _fake_rows(script, monkeypatch, calls)
    work = tmp_path / 'work'
    argv = ['--work-dir', str(work), '--seeds', '0', '--n-boot', '20', '--no-uniform']
    script.main(argv)
    capsys.readouterr()
    script.main(argv + ['--seeds', '0', '1', '--dry-run'])
    out = capsys.readouterr().out
    assert 'done  vis_slim_seed0' in out and 'todo  vis_dense_seed1' in out
    # the fitted cost model: 10 s of training per row, 5 s per test
    assert '5/9 rows finished' in out and 's/iter, 5 s per test' in out
    for change, said in ((['--p3b-keep', '0.3'], '--p3b-keep: 0.5 in the work dir, 0.3 now'),
                         (['--finetune-iters', '100'], '--finetune-iters: 150 in the work dir'),
                         (['--cfg-options', 'model.track_head.num_queries=5'],
                          '--cfg-options: (none) in the work dir, '
                          'model.track_head.num_queries=5 now')):
        with pytest.raises(SystemExit):
            script.main(argv + change + ['--dry-run'])
        assert said in capsys.readouterr().err
    assert len(calls) == 5  # nothing ran
    # a data root given relative or absolute is the same option
    lock = script.PipelineLock(str(work), {})
    saved = json.loads((work / 'run_options.json').read_text())
    assert lock.mismatch(dict(saved, vis_data=osp.join(ROOT, saved['vis_data']))) is None
    for bad, said in ((['--cfg-options', 'train_cfg.max_iters=3'], 'set by the script itself'),
                      (['--cfg-options', 'model.track_head.num_querie=5'], 'check the spelling'),
                      (['--p3b-keep', '1.5'], '--p3b-keep must be in (0, 1)')):
        with pytest.raises(SystemExit):
            script.main(['--work-dir', str(tmp_path / 'new')] + bad)
        assert said in capsys.readouterr().err


@pytest.mark.parametrize('name, argv', [('toy_pipeline', []),
                                        ('toy_pipeline_keep0.25', ['--p3b-keep', '0.25'])])
def test_committed_results_are_re_rendered(script, tmp_path, name, argv, capsys):
    """A result dir made before the rows were kept: --report-only renders
    its results.json again, byte for byte; --dry-run plans on it."""
    work = tmp_path / name
    shutil.copytree(osp.join(RESULTS, name), work)
    script.main(['--work-dir', str(work), '--report-only'] + argv)
    for file in ('results.md', 'results.json'):
        assert (work / file).read_bytes() == open(osp.join(RESULTS, name, file), 'rb').read()
    script.main(['--work-dir', str(work), '--dry-run', '--seeds', '0', '1', '2'] + argv)
    assert '0/16 rows finished' in capsys.readouterr().out
