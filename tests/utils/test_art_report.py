"""mmsparse.utils.art_report: the reproduction's summary, tables, notes and
plots from fake runs, the switch a run records, the toy VIS plot."""
import json
from types import SimpleNamespace

import numpy as np
import pytest

from mmsparse.utils import art_report

N_IMAGES = 60  # 30 digits x 2 variants


def _run(method, sparsity, seed, accuracy):
    rng = np.random.default_rng(100 * seed + len(method))
    correct = (rng.random(N_IMAGES) < accuracy).astype(int)
    run = dict(kind='main', method=method, sparsity=sparsity, seed=seed,
               test_accuracy=100 * correct.mean(), test_correct=''.join(map(str, correct)),
               test_digit_index=np.repeat(np.arange(30), 2).tolist(), iterations=100,
               seconds=60.0, cpu_seconds=50.0)
    if method.startswith('art'):
        run.update(lambda_init=5e-6, forced=seed == 1, art_epochs=4 + seed,
                   art_history=[dict(dense=80.0 + seed, best_mean=70.0)])
    return run


@pytest.fixture(scope='module')
def summary():
    main = [_run('dense', None, s, 0.9) for s in (0, 1)]
    main += [_run(m, 0.9, s, a) for s in (0, 1)
             for m, a in (('art_hs', 0.85), ('oneshot', 0.6), ('art_l1', 0.8))]
    warmup = dict(kind='warmup', train_seconds=10.0, cpu_seconds=8.0)
    tuning = dict(art_hs=dict(lambda_init=5e-6, candidates=[
        dict(lambda_init=5e-6, val_accuracy=88.0, switch_reason='criterion', art_epochs=4)]))
    return art_report.summarize_runs(main + [warmup], main, [0, 1, 2], dict(eta=1.2), tuning,
                                     n_boot=50)


def test_summary_rows_and_differences(summary):
    assert summary['seeds'] == [0, 1] and summary['seeds_left_out'] == [2]
    assert summary['n_test_images'] == N_IMAGES and summary['n_test_digits'] == 30
    assert [r['method'] for r in summary['rows']] == ['art_hs', 'art_l1', 'oneshot']
    assert summary['cost'] == dict(runs=9, wall_seconds=490.0, cpu_seconds=408.0)
    hs = art_report.find_row(summary, 'art_hs', 0.9)
    assert 'diff_seeds' not in hs and hs['forced'] == 1 and hs['art_epochs'] == [4, 5]
    one = art_report.find_row(summary, 'oneshot', 0.9)
    diff = np.mean(one['accuracy']) - np.mean(hs['accuracy'])
    assert one['diff_seeds']['diff'] == pytest.approx(diff)
    assert one['diff_bootstrap']['n'] == 30  # drawn by digit
    assert art_report.find_row(summary, 'gmp', 0.9) is None


def test_tables_notes_and_files(summary, tmp_path):
    lines = art_report.table_lines(summary)
    assert 'partial seeds [2] left out' in lines[0]
    assert '| ART + HyperSparse | ' in '\n'.join(lines) and '(1/2 forced)' in '\n'.join(lines)
    notes = art_report.notes_lines(summary, summary['tuning'], 100, 0.98)
    assert any(n.startswith('- ART + HyperSparse @ 90 %: λ0 = 5e-06, forced 1/2, '
                            'ART epochs 4.5 (4-5), at the switch 80.5 / 70.0 %')
               for n in notes)
    assert '- ART + HyperSparse: 5e-06: 88.00 (criterion, 4 ep) → 5e-06' in notes
    table = art_report.write_summary(str(tmp_path), summary, 100, 0.98)
    assert (tmp_path / 'results.md').read_text() == table
    assert json.loads((tmp_path / 'results.json').read_text())['seeds'] == [0, 1]
    assert (tmp_path / 'accuracy.png').exists() and (tmp_path / 'diff_to_hs.png').exists()


def test_switch_record_of_the_pruning_hook():
    hook = SimpleNamespace(target_sparsity=0.9, switch_unit=7, history=[{'lambda': 1.0}] * 3,
                           switch_info=dict(reason='criterion', model_step=2))
    runner = SimpleNamespace(hooks=[SimpleNamespace(), hook])
    assert art_report.switch_record(runner) == dict(
        switch_epoch=7, switch_reason='criterion', forced=False, art_epochs=3, model_step=2,
        art_history=hook.history)
    oneshot = SimpleNamespace(target_sparsity=0.9, switch_unit=3)
    assert art_report.switch_record(SimpleNamespace(hooks=[oneshot])) == dict(switch_epoch=3)
    assert art_report.switch_record(SimpleNamespace(hooks=[])) == {}


def test_vis_toy_plot(tmp_path):
    boot = dict(diff=-0.01, low=-0.02, high=0.0)
    groups = [dict(method='art', label='ART + HyperSparse', AP=0.3),
              dict(method='gmp', label='GMP (cubic)', AP=0.28, diff_art_boot=boot,
                   per_seed_art={0: boot})]
    results = [dict(method='art', seed=0, AP=0.3, switch_iter=5,
                    art_history=[dict(unit=2, dense=1.0, pruned=2.0),
                                 dict(unit=4, dense=0.9, pruned=1.0)]),
               dict(method='gmp', seed=0, AP=0.28)]
    art_report.plot_vis_toy(groups, results, str(tmp_path / 'vis.png'), 0.9)
    assert (tmp_path / 'vis.png').stat().st_size > 0
