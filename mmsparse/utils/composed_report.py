"""Report of the toy composed pipeline
(``projects/composed/run_toy_pipeline.py``): its VIS rows, the comparisons
of the report, the markdown of a summary and the time left of a run (a cost
model with the measured defaults).

A summary (``results.json``, as JSON reads it back: seeds as strings) holds
``args`` (the run's options), ``classifier_top1``, ``p3b_keep_ratio``,
``ap`` (row -> seed -> AP), ``bootstrap_seed_mean`` and ``seed_intervals``
(``'<row>-<reference>'`` -> interval) and ``checkpoint_bytes`` (seed -> the
ART row's sparse export sizes).
"""
from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np

from mmsparse.experiment import CostModel
from mmsparse.utils.stats import format_diff

#: The VIS rows of a seed, in report order, and their labels.
LABELS = dict(dense='dense', slim='P3B-slim', slim_uniform='uniform-slim (known-bad baseline)',
              slim_vpp='P3B-slim + VPP', slim_vpp_art='P3B-slim + VPP + ART 90 %')
#: The row that continues the slim + VPP model with ART.
ART = 'slim_vpp_art'
#: The row of the classifier stages (the first of the plan).
CLASSIFIERS = 'classifiers'
#: Cost-model defaults before a VIS row is finished (the README, "Cost,
#: measured", 2 threads): seconds per training iteration, per test, of the
#: classifiers row.
SEC_PER_ITER, TEST_SECONDS, CLASSIFIER_SECONDS = 0.85, 40.0, 730.0


def time_left(rows: Sequence[Dict], finished: Mapping[str, Dict]) -> Tuple[float, CostModel]:
    """Seconds left of the planned ``rows`` (the classifiers row and VIS
    rows with their ``iters``) and the cost model of a VIS row, fitted on
    the finished VIS rows (``finished``: name -> row, with
    ``train_seconds``, ``iters``, ``test_seconds``)."""
    cost = CostModel(SEC_PER_ITER, TEST_SECONDS).fit(
        (r['train_seconds'], r['iters'], r['test_seconds'])
        for name, r in sorted(finished.items()) if name != CLASSIFIERS)
    left = cost.left(r['iters'] for r in rows
                     if r['name'] != CLASSIFIERS and r['name'] not in finished)
    left += 0 if CLASSIFIERS in finished else CLASSIFIER_SECONDS
    return left, cost


def comparisons(rows: Sequence[str]) -> List[Tuple[str, str]]:
    """(row, reference) pairs of the report, from the VIS rows present
    (``rows``, in report order, dense first)."""
    return [(r, 'dense') for r in rows[1:]] + [('slim_vpp', 'slim')] + \
        [('slim', 'slim_uniform')] * ('slim_uniform' in rows) + [(ART, 'slim_vpp')] * (ART in rows)


def _caption(summary: Dict) -> str:
    a, acc, mean = summary['args'], summary['classifier_top1'], summary['bootstrap_seed_mean']
    rows, ft, p3b = list(summary['ap']), a['slim_finetune_epochs'], a['p3b_epochs']
    return (
        f"Toy YouTube-VIS (held-out videos, {next(iter(mean.values()))['n']} videos). "
        f"Classifier top-1 on the toy-shape crops: dense {acc['dense']:.1f} %, P3B-slim (keep "
        f"{summary['p3b_keep_ratio']:.3f} of the parameters, fine-tuned {ft} epochs) "
        f"{acc['slim']:.1f} %" + (
            ', uniform-slim (the same budget with one keep ratio per block, cut by weight norm '
            f"from the dense classifier, fine-tuned {p3b + ft} epochs = P3B's {p3b} + {ft}) "
            f"{acc['slim_uniform']:.1f} %" if 'slim_uniform' in rows else '')
        + f". VIS: {a['pretrain_iters']} iterations from the classifier weights + "
        f"{a['finetune_iters']} for every row (VPP keep {a['keep_ratio']} from block 1 in the "
        f"last {a['finetune_iters']}" + (
            f"; the ART row continues the slim + VPP model for {a['art_iters']} more iterations"
            if ART in rows else '')
        + '). AP in points; differences with 95 % paired-bootstrap intervals over the held-out '
        'videos (the seed-mean of both rows on the same video draws)'
        f'{" and the paired seed interval" if len(a["seeds"]) > 1 else ""}.')


def render(summary: Dict) -> str:
    """The markdown of a summary (as JSON reads it back: seeds as
    strings)."""
    a, ap = summary['args'], summary['ap']
    mean, cis = summary['bootstrap_seed_mean'], summary['seed_intervals']
    rows, seeds = list(ap), [str(s) for s in a['seeds']]
    several = len(seeds) > 1
    lines = [_caption(summary), '',
             '| row | AP (mean over seeds) | per seed | vs dense (bootstrap over videos) '
             '| vs dense (seeds) |', '|---|---|---|---|---|']
    for row in rows:
        cells = ['-', '-'] if row == 'dense' else [
            format_diff(mean[f'{row}-dense'], 100, 1),
            format_diff(cis[f'{row}-dense'], 100, 1) if several else '-']
        lines.append(f"| {LABELS[row]} | {100 * float(np.mean([ap[row][s] for s in seeds])):.1f}"
                     f" | {', '.join(f'{100 * ap[row][s]:.1f}' for s in seeds)} | "
                     f'{cells[0]} | {cells[1]} |')
    lines.append('\nslim + VPP vs slim (bootstrap over videos): '
                 f"{format_diff(mean['slim_vpp-slim'], 100, 1)} AP points")
    if 'slim_uniform' in rows:
        lines.append('P3B-slim vs uniform-slim (bootstrap over videos): '
                     f"{format_diff(mean['slim-slim_uniform'], 100, 1)} AP points" + (
                         f"; seeds {format_diff(cis['slim-slim_uniform'], 100, 1)}"
                         if several else ''))
    if summary['checkpoint_bytes']:
        z, mib = summary['checkpoint_bytes'][seeds[0]], 2 ** 20
        lines.append(
            f"ART ({a['art_iters']} iterations, 90 % sparsity) vs slim + VPP (bootstrap over "
            f"videos): {format_diff(mean[f'{ART}-slim_vpp'], 100, 1)} AP points. Checkpoint: "
            f"sparse export {z['sparse_file'] / mib:.2f} MiB vs the dense model's state dict "
            f"{z['dense_row_state_dict'] / mib:.2f} MiB "
            f"({z['sparse_file'] / z['dense_row_state_dict']:.3f}x; the ART model dense: "
            f"{z['art_state_dict'] / mib:.2f} MiB).")
    return '\n'.join(lines)
