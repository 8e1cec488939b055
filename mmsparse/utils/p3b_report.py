"""Report of the P3B transfer comparison (``projects/p3b/run_transfer_v2.py``)
and the calibration of its cost estimate.

A row (one method, keep ratio and seed) holds its top-1 after the
transfer / pruning run and after the fine-tune (``acc_pruned``,
``acc_finetuned``), the per-image correctness of both (``correct_pruned``,
``correct_finetuned``: a ``0``/``1`` string) with the held-out digit of each
image (``digit``), its parameters and seconds. Rows are compared paired by
seed (:func:`compare`): a t interval over the per-seed differences and a
paired bootstrap over the held-out *digits* (the variants of a digit drawn
together) of the seed-averaged correctness.
"""
import os.path as osp
import statistics
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from mmsparse.experiment import markdown_table
from mmsparse.utils import p3b_plots
from mmsparse.utils.stats import (format_diff, paired_bootstrap,
                                  paired_seed_interval)

#: Methods of the comparison after the dense benefit rows, in table order.
METHODS = ('P3B', 'P3B-frozen', 'uniform', 'magnitude')
#: (row, reference row) pairs of the comparison table; the dense benefit
#: run (keep 1) is the reference of every keep ratio: the known-bad
#: baselines must lose against it before the methods are ranked
COMPARISONS = (('uniform', 'dense'), ('magnitude', 'dense'), ('P3B-frozen', 'dense'),
               ('P3B', 'dense'), ('P3B', 'uniform'), ('P3B', 'P3B-frozen'),
               ('P3B', 'magnitude'), ('P3B-frozen', 'uniform'), ('magnitude', 'uniform'))
#: The two cost families of rows: a pruning run that measures block
#: benefit with probes (the dense benefit row, P3B, P3B-frozen) or one that
#: trains gates only (uniform budget: uniform, magnitude).
FAMILY = {'dense': 'probes', 'P3B': 'probes', 'P3B-frozen': 'probes',
          'uniform': 'gates', 'magnitude': 'gates'}
#: Seconds per row at 1 thread, 50 + 20 epochs, ``--probe reference``
#: (``projects/p3b/README.md``, "Cost of the full run"); the fine-tune
#: share of a row: 20 epochs x 68 iterations x 0.049 CPU s of dense
#: training; cheap probes cost 0.09 instead of 0.18 CPU s per pruning
#: iteration.
CALIBRATION = dict(probes=680.0, gates=285.0)
CALIBRATION_FINETUNE = 67.0
CALIBRATION_EPOCHS = (50, 20)
CHEAP_PROBE_FACTOR = 0.09 / 0.18


def calibration(family: str, finetune_epochs: int, probe: str) -> Tuple[float, float]:
    """Before any row of ``family`` finished: seconds per pruning epoch and
    of the fine-tune (the README calibration scaled to ``finetune_epochs``;
    half the probe cost with ``probe='cheap'``)."""
    epochs, ft_epochs = CALIBRATION_EPOCHS
    finetune = CALIBRATION_FINETUNE * finetune_epochs / ft_epochs
    rate = (CALIBRATION[family] - CALIBRATION_FINETUNE) / epochs
    rate *= CHEAP_PROBE_FACTOR if family == 'probes' and probe == 'cheap' else 1
    return rate, finetune


def mean_std(vals: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample std (0 for one value, nan for none)."""
    if not vals:
        return float('nan'), float('nan')
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def digit_score(rows: Sequence[Mapping], key: str) -> Tuple[Callable, int]:
    """``indices -> accuracy`` over a draw of held-out digits (their images
    pooled) of the seed-averaged correctness ``key`` of ``rows``; the
    number of digits."""
    _, inverse = np.unique(np.asarray(rows[0]['digit']), return_inverse=True)
    c = np.mean([[int(ch) for ch in r[key]] for r in rows], axis=0)
    sums, n = np.bincount(inverse, weights=c), np.bincount(inverse)
    return (lambda i: sums[i].sum() / n[i].sum()), len(n)


def compare(rows: Sequence[Mapping], keep: float, a: str, b: str,
            n_boot: int) -> Optional[Dict]:
    """Paired (same seeds) comparison of method ``a`` at ``keep`` with
    ``b`` at ``keep`` (or with the dense rows, whatever ``keep``); None
    with fewer than two paired seeds."""
    def at(method):
        return {r['seed']: r for r in rows
                if r['method'] == method and (method == 'dense' or r['keep_ratio'] == keep)}

    ra, rb = at(a), at(b)
    seeds = sorted(set(ra) & set(rb))
    if len(seeds) < 2:
        return None
    out = dict(a=a, b=b, keep_ratio=keep, seeds=seeds)
    for key in ('acc_pruned', 'acc_finetuned'):
        out[key] = paired_seed_interval([ra[s][key] for s in seeds], [rb[s][key] for s in seeds])
        corr = key.replace('acc', 'correct')
        (fa, n), (fb, _) = (digit_score([r[s] for s in seeds], corr) for r in (ra, rb))
        out[key + '_digits'] = paired_bootstrap(fa, fb, n, n_boot=n_boot, seed=0)
    return out


def group_summary(rows: Sequence[Mapping]) -> List[Dict]:
    """Per (method, keep ratio), keep ratios descending, methods in table
    order: seeds, mean parameters, mean ± std of both accuracies, mean
    seconds."""
    groups = {}
    for r in rows:
        groups.setdefault((r['method'], r['keep_ratio']), []).append(r)
    order = ['dense'] + list(METHODS)
    return [dict(method=m, keep_ratio=k, seeds=sorted(r['seed'] for r in rs),
                 params=statistics.fmean(r['params'] for r in rs),
                 acc_pruned=mean_std([r['acc_pruned'] for r in rs]),
                 acc_finetuned=mean_std([r['acc_finetuned'] for r in rs]),
                 seconds=statistics.fmean(r['seconds'] for r in rs),
                 cpu_seconds=statistics.fmean(r['cpu_seconds'] for r in rs))
            for (m, k), rs in sorted(groups.items(),
                                     key=lambda kv: (-kv[0][1], order.index(kv[0][0])))]


def render(rows: Sequence[Mapping], dense_params: Optional[float], summary: Sequence[Dict],
           comps: Sequence[Dict], late: Optional[Dict]) -> str:
    """The markdown of the report: the groups, the paired comparisons and
    the dense transfer's block benefit over training (``late``:
    :func:`mmsparse.p3b.history.benefit_timeline`)."""
    n_test = len(rows[0]['correct_finetuned'])
    lines = [f'Test set: {n_test} images (one image = {100 / n_test:.3f} %), '
             f'{len(set(rows[0]["digit"]))} held-out digits.', ''] + markdown_table(
        ['method', 'keep (goal)', 'params (slim)', 'params / dense',
         'top-1 after transfer / pruning run', 'top-1 after fine-tune', 's per row'],
        [[s['method'], f"{s['keep_ratio']:g}", f"{s['params']:,.0f}",
          f"{s['params'] / dense_params if dense_params else float('nan'):.3f}",
          '{:.2f} ± {:.2f}'.format(*s['acc_pruned']),
          '{:.2f} ± {:.2f}'.format(*s['acc_finetuned']), f"{s['seconds']:.0f}"]
         for s in summary])
    lines += ['', 'mean ± std over seeds. Paired differences (points of top-1), 95 % intervals: '
              't over seeds (same seed = same data order, head and probes) and bootstrap over '
              'held-out digits of the seed-averaged correctness:', ''] + markdown_table(
        ['keep', 'comparison', 'seeds', 'after pruning run: per-seed t', 'bootstrap (digits)',
         'after fine-tune: per-seed t', 'bootstrap (digits)'],
        [[f"{c['keep_ratio']:g}", f"{c['a']} − {c['b']}", len(c['seeds']),
          format_diff(c['acc_pruned']), format_diff(c['acc_pruned_digits'], 100),
          format_diff(c['acc_finetuned']), format_diff(c['acc_finetuned_digits'], 100)]
         for c in comps])
    if late:
        lines += ['', f'Block benefit of the dense transfer (mean of cls and patch ΔCE, mean '
                  f"over {late['seeds']} seeds): first eighth of training → last eighth, epoch "
                  'at half of the gain:', ''] + markdown_table(
            ['sub-block', 'early', 'final', 'half-gain epoch'],
            [[p3b_plots.sub_block_name(j), f'{e:+.3f}', f'{f:+.3f}',
              '-' if h is None else f'{h:.1f}'] for j, (e, f, h) in enumerate(
                  zip(late['early'], late['final'], late['half_gain_epoch']))])
    return '\n'.join(lines)


def plot(out: str, rows: Sequence[Mapping], summary: Sequence[Dict], comps: Sequence[Dict],
         late: Optional[Dict], dense_params: Optional[float],
         history: Callable[[Mapping], Dict]) -> None:
    """``accuracy.png``, ``paired_diffs.png``, ``benefit_over_training.png``
    (mean over seeds) and ``keep_ratio_p3b_vs_frozen.png`` (the first seed)
    in ``out``; ``history(row)``: the P3B history a row names."""
    p3b_plots.plot_accuracy_vs_params(summary, dense_params, osp.join(out, 'accuracy.png'))
    if comps:
        p3b_plots.plot_paired_differences(comps, osp.join(out, 'paired_diffs.png'))
    if late:
        p3b_plots.plot_benefit_curves(late['epochs'], late['mean'],
                                      osp.join(out, 'benefit_over_training.png'))
    first = {(r['method'], r['keep_ratio']): r for r in rows if r['seed'] == rows[0]['seed']}
    keeps = sorted({k for m, k in first if m == 'P3B' and ('P3B-frozen', k) in first},
                   reverse=True)
    if keeps:
        p3b_plots.plot_keep_ratio_runs([[(
            f"{m}, keep {k:g}, seed {first[m, k]['seed']}", history(first[m, k]))
            for m in ('P3B', 'P3B-frozen')] for k in keeps],
            osp.join(out, 'keep_ratio_p3b_vs_frozen.png'))
