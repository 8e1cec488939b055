"""mmsparse.art.schedule_scaling: the reference's ART schedule scaled to a
shorter run (lr steps, λ growth, iteration bound, λ0 choice)."""
import math

import pytest
from mmengine.config import Config

from mmsparse.art.schedule_scaling import (finetune_milestones,
                                           override_epochs, run_iterations,
                                           scaled_eta, select_lambda)

BASE = 'projects/hypersparse/configs/repro_resnet8_harddigits.py'
SCHEDULE = dict(ref_iters_per_epoch=782, ref_eta=1.05, ref_finetune_epochs=160,
                warmup_epochs=15, finetune_epochs=40, art_max_epochs=32, prune_window=12,
                iters_per_epoch=124)


def test_milestones_at_half_and_three_quarters():
    assert finetune_milestones(40) == [20, 30]
    assert finetune_milestones(2) == [1, 2]  # increasing even when they round together
    assert finetune_milestones(1) == [1, 2]


def test_override_epochs_checks_keys_and_values():
    assert override_epochs(SCHEDULE, dict(finetune_epochs=2))['finetune_epochs'] == 2
    assert SCHEDULE['finetune_epochs'] == 40  # a copy
    for bad in (dict(finetune_epoch=2), dict(finetune_epochs=0),
                dict(finetune_epochs=2.5)):
        with pytest.raises(ValueError, match='override_epochs: the schedule takes'):
            override_epochs(SCHEDULE, bad)


def test_scaled_eta_matches_the_repro_configs():
    cfg = Config.fromfile(BASE)
    compressed = scaled_eta(SCHEDULE, 'compressed', 124)
    assert compressed['eta'] == pytest.approx(cfg.repro_eta)
    assert compressed['ref_epochs_per_epoch'] == 4.0  # 160 / 40
    assert compressed['time_compression'] == pytest.approx(cfg.time_compression)
    per_iter = scaled_eta(SCHEDULE, 'per-iteration', 124)
    assert per_iter['eta'] == pytest.approx(cfg.per_iteration_eta)
    assert per_iter['time_compression'] == pytest.approx(1.0)
    assert list(compressed) == ['lambda_growth', 'ref_epochs_per_epoch', 'time_compression',
                                'eta']
    with pytest.raises(ValueError, match="scaled_eta: growth must be one of"):
        scaled_eta(SCHEDULE, 'linear', 124)


def test_run_iterations_per_kind():
    assert run_iterations(SCHEDULE, 'warmup') == 15 * 124
    assert run_iterations(SCHEDULE, 'dense') == 40 * 124
    assert run_iterations(SCHEDULE, 'pruning') == (12 + 40) * 124
    # ART at its cap, each ART epoch with a criterion pass of a third of an epoch
    assert run_iterations(SCHEDULE, 'art') == pytest.approx((32 + 40) * 124 + 32 * 124 / 3)
    with pytest.raises(ValueError, match='run_iterations: kind must be one of'):
        run_iterations(SCHEDULE, 'gmp')


def _run(lam, acc, forced=False, method='art_hs'):
    return dict(method=method, lambda_init=lam, val_accuracy=acc, forced=forced,
                switch_reason='min_finetune' if forced else 'criterion', art_epochs=3)


def test_select_lambda_ties_and_candidates():
    runs = [_run(5e-5, 80.0), _run(5e-7, 90.0, forced=True), _run(5e-6, 90.0),
            _run(5e-6, 99.0, method='art_l1')]
    chosen = select_lambda(runs, 'art_hs')
    assert chosen['lambda_init'] == 5e-6 and chosen['val_accuracy'] == 90.0
    assert [c['lambda_init'] for c in chosen['candidates']] == [5e-7, 5e-6, 5e-5]
    # both switched by the criterion: the λ0 nearest the reference (in log)
    near = select_lambda([_run(5e-7, 90.0), _run(1e-5, 90.0)], 'art_hs')
    assert near['lambda_init'] == 1e-5
    assert abs(math.log(1e-5 / 5e-6)) < abs(math.log(5e-7 / 5e-6))
    with pytest.raises(ValueError, match='select_lambda: no tuning run for art_l2'):
        select_lambda(runs, 'art_l2')
