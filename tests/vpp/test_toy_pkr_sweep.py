"""The PKR sweep of projects/vpp/run_toy_comparison.py: the scaled
schedules and their rows, the lock of the sweep rule, the crossing of -1 AP
with its bootstrap interval, and the curve report on fake rows."""
import json

import numpy as np
import pytest
from mmengine.config import Config, DictAction
from script_loader import load_script
from vis_helpers import empty_heldout_root, synthetic_video_records

from mmsparse.utils import vpp_toy_plan as plan
from mmsparse.utils import vpp_toy_report as report
from mmsparse.utils.stats import bootstrap_draws, paired_bootstrap
from mmsparse.vpp import check_schedule, schedule_pkr

PAPER = [0.7, 0.56, 0.448, 0.358]
CLOSURE_LAYERS = [1, 3, 6, 9]
CLOSURE_PAPER = 'configs/toy/vpp_mask2former_vit_toy-ytvis21_closure_paper.py'


@pytest.fixture(scope='module')
def script():
    return load_script('projects/vpp/run_toy_comparison.py')


# ------------------------------------------------------------ the schedules
def test_scaled_schedule_meets_the_target_and_stays_geometric():
    assert schedule_pkr(PAPER, CLOSURE_LAYERS, 12, num_tokens=10 ** 6) == pytest.approx(
        (1 + 2 * 0.7 + 3 * 0.56 + 3 * 0.448 + 3 * 0.358) / 12)
    for target in plan.PKR_SWEEP:
        keep = plan.scale_schedule(PAPER, CLOSURE_LAYERS, 12, target)
        # the rounding-free PKR of the backbone's own schedule
        assert schedule_pkr(keep, CLOSURE_LAYERS, 12, num_tokens=10 ** 6) == pytest.approx(
            target, abs=2e-4)
        # keep_i = paper_i ** g: one g for every stage
        g = np.log(keep) / np.log(PAPER)
        assert np.ptp(g) < 2e-3
        check_schedule(keep, CLOSURE_LAYERS, 12)  # a valid schedule
    # the paper schedule's own PKR gives the paper schedule (g = 1)
    own = schedule_pkr(PAPER, CLOSURE_LAYERS, 12, num_tokens=10 ** 6)
    assert plan.scale_schedule(PAPER, CLOSURE_LAYERS, 12, own) == pytest.approx(PAPER, abs=1e-4)
    # lower target, smaller keep ratios at every stage
    high, low = (plan.scale_schedule(PAPER, CLOSURE_LAYERS, 12, t) for t in (0.6, 0.4))
    assert all(a > b for a, b in zip(high, low))
    # on the 6-block hard toy (stages at blocks 1-4)
    keep = plan.scale_schedule(PAPER, [1, 2, 3, 4], 6, 0.5)
    assert schedule_pkr(keep, [1, 2, 3, 4], 6, num_tokens=10 ** 6) == pytest.approx(0.5, abs=2e-4)


@pytest.mark.parametrize('target, message', [
    (1.0, 'must be in (0.083, 1)'),
    (0.05, 'must be in (0.083, 1)'),
    (0.084, 'no valid schedule'),  # the last stages round to 0
])
def test_scaled_schedule_refuses_targets_out_of_reach(target, message):
    with pytest.raises(ValueError, match='--pkr-sweep') as err:
        plan.scale_schedule(PAPER, CLOSURE_LAYERS, 12, target)
    assert message in str(err.value)


def test_sweep_names_and_labels():
    assert plan.sweep_name('closure_paper', 0.6) == 'closure_paper_sweep0.6'
    assert plan.parse_sweep('closure_paper_sweep0.6') == ('closure_paper', 0.6)
    assert plan.parse_sweep('closure_paper') is None
    assert plan.parse_sweep('closure_pkr0.4') is None
    assert plan.parse_sweep('nothing_sweep0.4') is None
    assert plan.schedule_label('paper_sweep0.3', 6) == 'paper scaled to PKR 0.3'
    assert report.group_order('closure_paper_sweep0.6', 'image') < report.group_order(
        'closure_paper_sweep0.4', 'temporal') < report.group_order('trunc1', 'truncated')
    assert report.group_order('closure_pkr0.4', 'random') < report.group_order(
        'closure_paper_sweep0.8', 'temporal')


def test_closure_sweep_rows(script):
    _, args = script.parse_args(['--toy', 'closure', '--seeds', '0', '1', '--schedules',
                                 '--pkr-sweep', '0.6', '0.4', '0.6'])
    assert script.check_args(args)[0] is None
    rows = {r['name']: r for r in script.plan_rows(args)}
    sweep = [r for r in rows.values() if r['schedule'] != 'dense']
    assert len(rows) == 2 * (1 + 2 * 3) and len(sweep) == 2 * 2 * 3  # duplicates dropped
    row = rows['closure_paper_sweep0.4_image_seed1']
    keep = plan.scale_schedule(PAPER, CLOSURE_LAYERS, 12, 0.4)
    assert row['config'] == CLOSURE_PAPER and row['keep_ratio'] == list(keep)
    assert row['target_pkr'] == 0.4 and row['selector'] == 'image' and row['seed'] == 1
    assert row['options'] == [f"model.backbone.keep_ratio=[{','.join(map(str, keep))}]",
                              'model.backbone.selector=image']
    # the options reach the backbone as that schedule
    cfg = Config.fromfile(CLOSURE_PAPER)
    action = DictAction(option_strings=['--cfg-options'], dest='cfg_options', nargs='+')
    ns = type('NS', (), {})()
    action(None, ns, row['options'])
    cfg.merge_from_dict(ns.cfg_options)
    bb = cfg.model.backbone
    assert check_schedule(bb.keep_ratio, bb.prune_layer, 12) == (keep, tuple(CLOSURE_LAYERS))
    assert bb.selector == 'image'
    # no value: the default sweep; the hard toy sweeps its own paper schedule
    _, args = script.parse_args(['--toy', 'closure', '--seeds', '0', '--pkr-sweep'])
    assert args.pkr_sweep == list(plan.PKR_SWEEP)
    assert len(script.plan_rows(args)) == 1 + 2 * 3 + len(plan.PKR_SWEEP) * 3
    _, hard = script.parse_args(['--seeds', '0', '--pkr-sweep', '0.5', '--selectors', 'random'])
    names = [r['name'] for r in script.plan_rows(hard)]
    assert 'paper_sweep0.5_random_seed0' in names
    assert script.plan_rows(hard)[-1]['config'] == plan.SCHEDULES['paper']['config']
    # without --pkr-sweep nothing changes
    _, hard = script.parse_args([])
    assert hard.pkr_sweep is None and 'pkr_sweep' not in script.run_options(hard)
    assert not any('sweep' in r['name'] for r in script.plan_rows(hard))
    # out of reach, or the base beyond the depth the options set
    _, args = script.parse_args(['--toy', 'closure', '--pkr-sweep', '0.05'])
    assert 'target PKR 0.05 must be in' in script.check_args(args)[0]
    _, args = script.parse_args(['--toy', 'closure', '--schedules', '--pkr-sweep', '0.5',
                                 '--cfg-options', 'model.backbone.arch.num_layers=8'])
    assert '--pkr-sweep closure_paper: prunes at blocks [1, 3, 6, 9], beyond the 8-block' in \
        script.check_args(args)[0]


def test_the_work_dir_keeps_the_sweep_rule(script, tmp_path):
    work = tmp_path / 'w'
    (work / 'rows').mkdir(parents=True)
    (work / 'rows' / 'dense_seed0.json').write_text('{}')  # a row: the lock holds
    _, sweep = script.parse_args(['--toy', 'closure', '--pkr-sweep'])
    _, plain = script.parse_args(['--toy', 'closure'])
    current = script.run_options(sweep)
    assert current['pkr_sweep'] == dict(base='closure_paper', scaling=plan.SWEEP_SCALING)
    lock = script.options_lock(str(work), 'closure')
    # a work dir made without a sweep takes one
    lock.write(script.run_options(plain))
    assert lock.mismatch(current) is None and not plan.keeps_sweep_rule(str(work))
    lock.write(current)
    assert plan.keeps_sweep_rule(str(work))
    # a later run without --pkr-sweep keeps the rule in run_options.json
    assert script.run_options(plain, True)['pkr_sweep'] == current['pkr_sweep']
    # rows of another rule are refused
    (work / 'run_options.json').write_text(json.dumps(dict(current, pkr_sweep=dict(
        base='closure_paper', scaling='keep_i = base_i * s'))))
    assert '--pkr-sweep:' in lock.mismatch(current)


# ------------------------------------------------------------ the crossing
def test_crossing_by_linear_interpolation():
    pkrs = [0.8, 0.6, 0.4, 0.2]
    assert report.crossing(pkrs, [0.0, -0.005, -0.015, -0.05]) == (pytest.approx(0.5), 'inside')
    # unsorted points are sorted by PKR, highest first
    assert report.crossing(pkrs[::-1], [-0.05, -0.015, -0.005, 0.0])[0] == pytest.approx(0.5)
    # the first crossing from the dense side (the curve comes back above later)
    assert report.crossing(pkrs, [0.0, -0.02, 0.0, -0.05])[0] == pytest.approx(0.7)
    # no crossing: the selector stays within 1 AP down to the lowest PKR
    assert report.crossing(pkrs, [0.01, 0.0, -0.005, -0.0099]) == (None, 'below')
    # already beyond at the highest PKR: the crossing lies above the swept range
    assert report.crossing(pkrs, [-0.02, -0.03, -0.04, -0.05]) == (None, 'above')
    # crossing at an end
    assert report.crossing(pkrs, [-0.01, -0.03, -0.04, -0.05]) == (0.8, 'inside')
    assert report.crossing(pkrs, [0.0, 0.0, 0.0, -0.01]) == (pytest.approx(0.2), 'inside')
    assert report.crossing([0.5], [-0.001]) == (None, 'below')
    assert report.crossing([0.5, 0.3], [0.02, -0.02], threshold=0.0)[0] == pytest.approx(0.4)


def test_crossing_interval_over_replicates():
    pkrs = [0.8, 0.6, 0.4, 0.2]
    base = np.array([0.0, -0.005, -0.015, -0.05])
    # shifted curves: shift s moves the crossing inside the 0.6-0.4 segment
    shifts = np.linspace(-0.004, 0.004, 401)
    found = report.crossing_interval(pkrs, base + shifts[:, None])
    crossings = [report.crossing(pkrs, base + s)[0] for s in shifts]
    assert found['low'] == pytest.approx(np.quantile(crossings, 0.025))
    assert found['high'] == pytest.approx(np.quantile(crossings, 0.975))
    assert found['low_where'] == found['high_where'] == 'inside'
    assert found['above'] == found['below'] == 0 and found['n_boot'] == 401
    # replicates that never cross (10 %) or cross above the range (10 %)
    reps = np.concatenate([np.tile(base, (80, 1)), np.tile([0, 0, 0, 0.], (10, 1)),
                           np.tile([-0.02, -0.03, -0.04, -0.05], (10, 1))])
    found = report.crossing_interval(pkrs, reps)
    assert (found['below'], found['above']) == (0.1, 0.1)
    assert (found['low'], found['low_where']) == (None, 'below')
    assert (found['high'], found['high_where']) == (None, 'above')
    # all draws past the lowest point: both bounds below the range
    found = report.crossing_interval(pkrs, np.zeros((20, 4)))
    assert found['low_where'] == found['high_where'] == 'below' and found['below'] == 1


def test_bootstrap_draws_are_those_of_paired_bootstrap():
    rng = np.random.default_rng(1)
    a, b = rng.random(50), rng.random(50)

    def score_a(idx):
        return a[idx].mean()

    def score_b(idx):
        return b[idx].mean()
    diffs = bootstrap_draws(score_a, score_b, 50, 200)
    ref = paired_bootstrap(score_a, score_b, 50, n_boot=200)
    assert np.quantile(diffs, [0.025, 0.975]) == pytest.approx([ref['low'], ref['high']])


def _interval(diff, width=0.004):
    return dict(diff=diff, low=diff - width, high=diff + width, n=3, method='paired_bootstrap')


def _curve(selector, diffs, pkrs, where):
    points = [dict(schedule=f'closure_paper_sweep{p}', target_pkr=p, keep_ratio=[0.7, 0.5],
                   seeds=[0, 1], pkr=(1 + 5 * p) / 6, pkr_pruned=p, AP=0.5 + d,
                   diff_boot=_interval(d), diff_seeds=dict(_interval(d), method='t'),
                   per_seed={0: _interval(d), 1: _interval(d + 0.002)})
              for p, d in zip(pkrs, diffs)]
    lo, hi = points[-1]['pkr'], points[0]['pkr']
    inside = where == 'inside'
    return dict(selector=selector, threshold=-0.01, points=points, crossing=dict(
        pkr=0.6 if inside else None, where=where, range=[lo, hi],
        pkr_pruned=0.52 if inside else None, low=0.55 if inside else None,
        low_where=where if not inside else 'inside', high=0.65, high_where='inside',
        above=0.0, below=0.05 if not inside else 0.0, n_boot=20, confidence=0.95))


def test_curve_tables_and_plot(tmp_path):
    curves = [_curve('temporal', [0.0, -0.02], [0.6, 0.4], 'inside'),
              _curve('image', [-0.005, -0.008], [0.6, 0.4], 'below')]
    text = '\n'.join(report.curve_lines(curves, dict(num_frames=6, n_boot=20)))
    assert 'AP against PKR (the PKR sweep)' in text
    assert ('| VPP (temporal prior) | closure_paper_sweep0.4 | 0.7/0.5 | 2 | 0.500 | 0.400 | '
            '48.0 | -2.0 [-2.4, -1.6] |') in text
    # PKR 0.6 of all frames: 0.52 of a pruned frame, 48 % patch sparsity
    assert ('| VPP (temporal prior) | 2 | 0.500 - 0.667 | 0.600 [0.550, 0.650] | 0% / 0% | '
            '0.520 [0.460, 0.580] | 48.0% [42.0%, 54.0%] |') in text
    # never reached: bounds beyond the swept range
    assert ('| image-only | 2 | 0.500 - 0.667 | < 0.500 [< 0.500, 0.650] | 0% / 5% | '
            '< 0.400 [< 0.400, 0.580] | > 60.0% [42.0%, > 60.0%] |') in text
    assert report.curve_lines([], {}) == []
    report.plot_curves(curves, str(tmp_path / 'curve.png'), 6, 'closure')
    assert (tmp_path / 'curve.png').stat().st_size > 0


# ------------------------------------------------------------ the report
QUALITY = {  # (selector, target PKR of a sweep row; None: the paper schedule) -> quality
    ('dense', None): 0.8, ('temporal', None): 0.8, ('temporal', 0.6): 0.8,
    ('temporal', 0.4): 0.5, ('image', None): 0.5, ('image', 0.6): 0.6, ('image', 0.4): 0.3}


def test_report_gives_the_curves(script, tmp_path, monkeypatch, capsys):
    data = empty_heldout_root(tmp_path / 'data')
    monkeypatch.setattr(script, 'heldout_gt', lambda root: {})
    monkeypatch.setattr(script, 'train', lambda *a, **k: ('pre.pth', 1.))

    def run_row(row, args, data_root, pre_ckpt, gt, work):
        target = row.get('target_pkr')
        records = synthetic_video_records(QUALITY[row['selector'], target], seed=row['seed'])
        pkr = {'dense': 1.0, 'closure_paper': 0.5415}.get(row['schedule'], target)
        return dict(row, finetune_iters=args.finetune_iters, pretrain_iters=args.pretrain_iters,
                    **records.stats(), pkr=(1 + 5 * pkr) / 6, keep=0.4, fg_recall=0.5,
                    train_seconds=1., test_seconds=1., records=records.to_dict())
    monkeypatch.setattr(script, 'run_row', run_row)
    argv = ['--toy', 'closure', '--work-dir', str(tmp_path / 'w'), '--results-dir',
            str(tmp_path / 'res'), '--data-root', str(data), '--seeds', '0', '1',
            '--schedules', 'closure_paper', '--selectors', 'temporal', 'image',
            '--n-boot', '20']
    script.main(argv)  # no sweep yet: no curve
    assert not (tmp_path / 'res' / 'pkr_curve.png').exists()
    assert 'pkr_curves' not in json.loads((tmp_path / 'res' / 'comparison.json').read_text())
    script.main(argv + ['--pkr-sweep', '0.6', '0.4'])
    assert 'pkr_curve.png' in capsys.readouterr().out
    assert (tmp_path / 'res' / 'pkr_curve.png').stat().st_size > 0
    summary = json.loads((tmp_path / 'res' / 'comparison.json').read_text())
    curves = {c['selector']: c for c in summary['pkr_curves']}
    assert set(curves) == {'temporal', 'image'}
    temporal = curves['temporal']
    assert [p['schedule'] for p in temporal['points']] == [
        'closure_paper_sweep0.6', 'closure_paper', 'closure_paper_sweep0.4']
    assert temporal['points'][0]['keep_ratio'] == list(
        plan.scale_schedule(PAPER, CLOSURE_LAYERS, 12, 0.6))
    assert temporal['points'][1]['keep_ratio'] is None  # the paper schedule, g = 1
    assert temporal['points'][2]['pkr_pruned'] == pytest.approx(0.4)
    # the same records as dense: no difference at all at 0.6 and at the paper schedule
    assert temporal['points'][0]['diff_boot']['diff'] == 0
    diffs = [p['diff_boot']['diff'] for p in temporal['points']]
    pkrs = [p['pkr'] for p in temporal['points']]
    assert diffs[2] < -0.01
    found = temporal['crossing']
    assert (found['pkr'], found['where']) == (
        pytest.approx(report.crossing(pkrs, diffs)[0]), 'inside')
    assert pkrs[2] < found['pkr'] < pkrs[1]
    assert found['low'] is None or found['low'] <= found['pkr']
    # the image-only selector loses more than 1 AP from the highest PKR on
    assert curves['image']['crossing']['where'] == 'above'
    table = (tmp_path / 'res' / 'comparison.md').read_text()
    assert 'PKR at which each selection loses 1 AP against dense' in table
    assert '| closure_paper scaled to PKR 0.4 | image-only |' in table
    # a later run without --pkr-sweep keeps the rule and the curve
    script.main(argv)
    assert 'pkr_sweep' in json.loads((tmp_path / 'w' / 'run_options.json').read_text())
    assert 'pkr_curves' in json.loads((tmp_path / 'res' / 'comparison.json').read_text())
