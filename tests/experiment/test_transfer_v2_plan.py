"""projects/p3b/run_transfer_v2.py on the experiment harness: its plan (rows,
names, order), rows run as stages of their own and resumed, the report from
fake rows, and the option lock (no training)."""
import json
import os
import os.path as osp

import numpy as np
import pytest
from script_loader import load_script

SCRIPT = 'projects/p3b/run_transfer_v2.py'
ACCURACY = {'dense': 0.9, 'P3B': 0.85, 'P3B-frozen': 0.84, 'uniform': 0.6, 'magnitude': 0.62}


@pytest.fixture(scope='module')
def script():
    return load_script(SCRIPT)


def test_plan_rows_names_and_order(script, tmp_path):
    args = script.parse_args(['--work-dir', str(tmp_path), '--seeds', '0', '1',
                              '--keep-ratios', '0.5', '0.25', '--methods', 'P3B', 'uniform'])
    names = [r['name'] for r in script.plan_rows(args)]
    assert names == ['dense_kr1_s0', 'dense_kr1_s1', 'P3B_kr0.5_s0', 'P3B_kr0.5_s1',
                     'uniform_kr0.5_s0', 'uniform_kr0.5_s1', 'P3B_kr0.25_s0', 'P3B_kr0.25_s1',
                     'uniform_kr0.25_s0', 'uniform_kr0.25_s1']
    assert args.work_dir == str(tmp_path)
    for config in {script.SOURCE_CFG, script.BENEFIT_CFG, *script.METHODS.values()}:
        assert osp.exists(osp.join(script.CONFIG_DIR, config))


def _fake_stage(script, calls, n_digits=30):
    """``run_stage`` that writes what a finished row writes: the row file and
    the hook's history (per-image correctness drawn per method)."""
    def run_stage(args, argv, stage):
        calls.append(stage)
        assert '--work-dir' in argv
        if stage == 'source':
            return 1.0
        row = {r['name']: r for r in script.plan_rows(args)}[stage]
        rng = np.random.default_rng(row['seed'])
        digit = np.repeat(np.arange(n_digits), 3).tolist()
        hist = osp.join('runs', stage, 'p3b', 'history.json')
        os.makedirs(osp.dirname(osp.join(args.work_dir, hist)), exist_ok=True)
        records = [dict(step=4 * e - 1, benefit_cls=[0.1 * e, -0.1], benefit_patch=[0.1 * e, 0.0],
                        block_keep=[1.0, row['keep_ratio']], global_keep=row['keep_ratio'])
                   for e in range(1, 9)]
        with open(osp.join(args.work_dir, hist), 'w') as f:
            json.dump(dict(iters_per_epoch=4, history=records), f)
        result = dict(method=row['method'], keep_ratio=row['keep_ratio'], seed=row['seed'],
                      params=int(1000 * row['keep_ratio']), digit=digit, history=hist,
                      seconds=10.0, cpu_seconds=9.0, settings=script.row_settings(args))
        for key in ('pruned', 'finetuned'):
            correct = (rng.random(len(digit)) < ACCURACY[row['method']]).astype(int)
            result[f'acc_{key}'] = 100 * correct.mean()
            result[f'correct_{key}'] = ''.join(map(str, correct))
        script.RowStore(args.work_dir).write(stage, result)
        return 1.0
    return run_stage


def test_rows_resume_report_and_lock(script, tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(script, 'run_stage', _fake_stage(script, calls))
    work, res = tmp_path / 'work', tmp_path / 'res'
    argv = ['--work-dir', str(work), '--results-dir', str(res), '--seeds', '0', '1',
            '--keep-ratios', '0.5', '--methods', 'P3B', 'P3B-frozen', 'uniform', '--n-boot',
            '50', '--jobs', '2']
    script.main(argv)
    planned = [r['name'] for r in script.plan_rows(script.parse_args(argv))]
    assert calls[0] == 'source' and sorted(calls[1:]) == sorted(planned)  # two at a time
    # a killed run: only the rows without a file run again (the source stage
    # counts as done once its marker is there)
    (work / 'source').mkdir()
    (work / 'source' / 'source.json').write_text('{}')
    (work / 'rows' / 'uniform_kr0.5_s1.json').unlink()
    calls.clear()
    script.main(argv)
    assert calls == ['uniform_kr0.5_s1']
    assert 'dense_kr1_s0: finished, skipped' in capsys.readouterr().out
    table = (res / 'results.md').read_text()
    assert table == (work / 'results.md').read_text()
    assert '| 0.5 | uniform − dense | 2 |' in table
    # benefit 0.1 x epoch (half of its gain at epoch 5) and a constant one
    assert '| 0.attn | +0.100 | +0.800 | 5.0 |' in table
    assert '| 0.mlp | -0.050 | -0.050 | - |' in table
    summary = json.loads((res / 'results.json').read_text())
    comp = {(c['a'], c['b']): c for c in summary['comparisons']}
    boot = comp['uniform', 'dense']['acc_finetuned_digits']
    assert boot['n'] == 30 and boot['high'] < 0  # the bootstrap draws digits
    assert 'digit' not in summary['rows'][0] and summary['args']['cfg_options'] == []
    for png in ('accuracy', 'paired_diffs', 'benefit_over_training',
                'keep_ratio_p3b_vs_frozen'):
        assert (res / f'{png}.png').exists() and (work / f'{png}.png').exists()
    assert len(list((res / 'rows').iterdir())) == len(planned)
    # the results dir alone (rows and the histories they name) rebuilds it
    capsys.readouterr()
    script.main(['--work-dir', str(res), '--report-only'] + argv[4:])
    assert (res / 'results.md').read_text() == table
    # other settings are refused before any work, naming them
    for change, said in ((['--prune-epochs', '40'], '--prune-epochs: 50 in the work dir, 40 now'),
                         (['--cfg-options', 'train_dataloader.batch_size=16'],
                          "--cfg-options: [] in the work dir, ['train_dataloader.batch_size=16'] "
                          'now')):
        with pytest.raises(SystemExit, match='other options') as err:
            script.main(argv + change)
        assert said in str(err.value)
    assert calls == ['uniform_kr0.5_s1']


@pytest.mark.parametrize('option, said', [
    ('train_cfg.max_epochs=3', 'set by the script itself'),
    ('custom_hooks.0.keep_ratio=0.3', 'set by the script itself'),
    ('model.backbone.arch.num_layer=2', 'in none of the configs'),
])
def test_cfg_options_are_checked(script, tmp_path, capsys, option, said):
    with pytest.raises(SystemExit):
        script.main(['--work-dir', str(tmp_path), '--dry-run', '--cfg-options', option])
    assert said in capsys.readouterr().err
    # a key of some of the configs only (the hook's) is taken
    args = script.parse_args(['--work-dir', str(tmp_path), '--cfg-options',
                              'custom_hooks.0.update_interval=3', 'model.head.in_channels=32'])
    assert script.load_cfg(args, script.SOURCE_CFG).model.head.in_channels == 32
    assert script.load_cfg(args, script.METHODS['P3B']).custom_hooks[0].update_interval == 3
