"""mmsparse.utils.composed_report and p3b_report: comparisons, the markdown
from fake summaries, the digit bootstrap's score and the cost calibration."""
import numpy as np
import pytest

from mmsparse.utils import composed_report, p3b_report


def _interval(diff, n=40):
    return dict(diff=diff, low=diff - 0.01, high=diff + 0.01, n=n, method='paired_bootstrap')


def test_composed_comparisons_follow_the_rows():
    rows = ['dense', 'slim', 'slim_uniform', 'slim_vpp', 'slim_vpp_art']
    assert composed_report.comparisons(rows) == [
        ('slim', 'dense'), ('slim_uniform', 'dense'), ('slim_vpp', 'dense'),
        ('slim_vpp_art', 'dense'), ('slim_vpp', 'slim'), ('slim', 'slim_uniform'),
        ('slim_vpp_art', 'slim_vpp')]
    assert composed_report.comparisons(['dense', 'slim', 'slim_vpp']) == [
        ('slim', 'dense'), ('slim_vpp', 'dense'), ('slim_vpp', 'slim')]


def test_composed_render_of_a_summary():
    rows = ['dense', 'slim', 'slim_vpp']
    pairs = composed_report.comparisons(rows)
    summary = dict(
        args=dict(seeds=[0, 1], slim_finetune_epochs=4, p3b_epochs=8, pretrain_iters=300,
                  finetune_iters=150, keep_ratio=0.4, art_iters=0),
        classifier_top1=dict(dense=95.0, slim=96.0), p3b_keep_ratio=0.5,
        ap={r: {'0': 0.3, '1': 0.5} for r in rows},
        bootstrap_seed_mean={f'{a}-{b}': _interval(-0.01) for a, b in pairs},
        seed_intervals={f'{a}-{b}': dict(_interval(-0.01, 2), method='t') for a, b in pairs},
        checkpoint_bytes={})
    text = composed_report.render(summary)
    assert text.startswith('Toy YouTube-VIS (held-out videos, 40 videos).')
    assert 'uniform-slim' not in text.split('\n')[0] and 'the ART row' not in text
    assert '| P3B-slim + VPP | 40.0 | 30.0, 50.0 | -1.0 [-2.0, +0.0] | -1.0 [-2.0, +0.0] |' \
        in text
    assert 'slim + VPP vs slim (bootstrap over videos): -1.0 [-2.0, +0.0] AP points' in text


def test_composed_time_left():
    rows = [dict(name='classifiers')] + [dict(name=f'vis_{i}', iters=100) for i in range(3)]
    left, cost = composed_report.time_left(rows, {})
    assert cost.fitted_on == 0
    assert left == pytest.approx(3 * (100 * composed_report.SEC_PER_ITER
                                      + composed_report.TEST_SECONDS)
                                 + composed_report.CLASSIFIER_SECONDS)
    finished = dict(classifiers={}, vis_0=dict(train_seconds=50.0, iters=100, test_seconds=10.0))
    left, cost = composed_report.time_left(rows, finished)
    assert (cost.rate, cost.fixed, cost.fitted_on) == (0.5, 10.0, 1)
    assert left == pytest.approx(2 * 60.0)


def test_p3b_calibration_and_mean_std():
    rate, finetune = p3b_report.calibration('probes', 20, 'reference')
    assert rate * 50 + finetune == pytest.approx(p3b_report.CALIBRATION['probes'])
    cheap, _ = p3b_report.calibration('probes', 20, 'cheap')
    assert cheap == pytest.approx(rate / 2)
    assert p3b_report.calibration('gates', 10, 'cheap')[1] == pytest.approx(67.0 / 2)
    assert p3b_report.mean_std([1.0, 3.0]) == (2.0, pytest.approx(np.sqrt(2)))
    assert p3b_report.mean_std([1.0]) == (1.0, 0.0)
    assert all(np.isnan(v) for v in p3b_report.mean_std([]))


def _rows(method, acc, seeds=(0, 1), keep=0.5):
    rng = np.random.default_rng(len(method))
    digit = [0, 0, 1, 1, 1, 2]  # digits with 2, 3 and 1 images
    out = []
    for s in seeds:
        c = ''.join(str(int(v)) for v in rng.random(len(digit)) < acc)
        out.append(dict(method=method, keep_ratio=keep, seed=s, digit=digit, params=100,
                        seconds=1.0, cpu_seconds=1.0, acc_pruned=100 * c.count('1') / 6,
                        acc_finetuned=100 * c.count('1') / 6, correct_pruned=c,
                        correct_finetuned=c))
    return out


def test_p3b_digit_score_pools_the_images_of_the_drawn_digits():
    rows = [dict(digit=[0, 0, 1, 1, 1, 2], correct='110100'),
            dict(digit=[0, 0, 1, 1, 1, 2], correct='100110')]
    score, n = p3b_report.digit_score(rows, 'correct')
    assert n == 3
    per_image = np.array([1, 0.5, 0, 1, 0.5, 0])  # the seed-mean of each image
    assert score(np.array([0, 1, 2])) == pytest.approx(per_image.mean())
    # digit 1 drawn twice: its three images count twice
    assert score(np.array([1, 1, 2])) == pytest.approx(2 * per_image[2:5].sum() / 7)


def test_p3b_compare_groups_and_render():
    rows = _rows('dense', 0.9, keep=1.0) + _rows('P3B', 0.8) + _rows('uniform', 0.5, seeds=(0,))
    comp = p3b_report.compare(rows, 0.5, 'P3B', 'dense', n_boot=20)
    assert comp['seeds'] == [0, 1] and comp['acc_finetuned']['n'] == 2
    assert comp['acc_pruned_digits']['n'] == 3
    assert p3b_report.compare(rows, 0.5, 'uniform', 'dense', n_boot=20) is None  # one seed
    groups = p3b_report.group_summary(rows)
    assert [(g['method'], g['keep_ratio']) for g in groups] == [
        ('dense', 1.0), ('P3B', 0.5), ('uniform', 0.5)]
    text = p3b_report.render(rows, 100, groups, [comp], None)
    assert text.startswith('Test set: 6 images (one image = 16.667 %), 3 held-out digits.')
    assert '| 0.5 | P3B − dense | 2 |' in text and 'Block benefit' not in text
