"""Report of the VPP toy comparison (``projects/vpp/run_toy_comparison.py``):
the markdown tables (AP per schedule and selection with the differences to
the dense rows, per seed, the selector contrasts, the object pixels kept)
and the plot, from the groups and contrasts its summary holds; with a PKR
sweep, the AP-against-PKR curve of each selector and the PKR at which it
loses 1 AP against dense (:func:`pkr_curves`, :func:`curve_lines`,
:func:`plot_curves`).

A group: ``schedule``, ``selector``, ``seeds``, the seed means of ``pkr``,
``fg_recall``, AP, AP50 and AP75, ``fg_recall_per_seed`` and, for a row
compared with the dense rows, ``diff_boot`` / ``diff_seeds`` / ``per_seed``;
a sweep group also ``target_pkr`` and ``keep_ratio``.
"""
import math
import textwrap
from typing import (Any, Callable, Dict, List, Mapping, Optional, Sequence,
                    Tuple)

import numpy as np

from mmsparse.experiment import format_option, markdown_table, plots
from mmsparse.experiment.tables import paired_seeds
from mmsparse.utils.stats import bootstrap_draws, format_diff
from mmsparse.utils.vpp_toy_plan import (LABELS, SCHEDULES, SELECTORS,
                                         TRUNCATED, parse_sweep,
                                         schedule_label)

#: The AP loss (AP as a fraction: 0.01 is 1 AP point) whose PKR the curve
#: reports.
AP_LOSS = 0.01


def _caption(meta: Mapping) -> str:
    options = ' '.join(f'`{format_option(k, v)}`' for k, v in meta.get('cfg_options', {}).items())
    return (
        f"{meta.get('toy', 'hard').capitalize()} toy YouTube-VIS "
        f"({meta['heldout_videos']} held-out videos x "
        f"{meta['num_frames']} frames, 320x192), ViT {meta['vit_depth']} blocks dim "
        f"{meta.get('embed_dims', 192)}, pixel decoder with "
        f"{meta.get('decoder_layers', 2)} deformable-attention encoder layers; model options "
        f"(--cfg-options, every row): {options or 'none'}; dense pre-training "
        f"{meta['pretrain_iters']} iters, then {meta['finetune_iters']} fine-tuning iters "
        'for every row from the same dense checkpoint, one row per training seed; first '
        'frame of each video dense. AP columns: mean over seeds. Differences to the dense '
        'rows of the same seeds, AP points with 95 % intervals: paired bootstrap over '
        f"held-out videos ({meta['n_boot']} draws, seed-mean of both rows on each draw) "
        'and Student-t over seeds.')


def render_tables(groups: Sequence[Dict], contrasts: Sequence[Dict], meta: Mapping) -> str:
    """The markdown of the report.

    Args:
        groups (Sequence[dict]): The groups, in table order.
        contrasts (Sequence[dict]): Selector / decoder contrasts:
            ``schedule``, ``a``, ``b``, ``seeds``, ``boot``,
            ``seed_interval`` and optionally ``label``.
        meta (Mapping): ``heldout_videos``, ``num_frames``, ``vit_depth``,
            ``pretrain_iters``, ``finetune_iters``, ``n_boot``, ``seeds``
            and optionally ``toy``, ``embed_dims``, ``decoder_layers``,
            ``cfg_options``.
    """
    pct = dict(scale=100, digits=1)
    depth = meta['vit_depth']
    lines = [_caption(meta), '']
    lines += markdown_table(
        ['schedule', 'selection', 'seeds', 'PKR (test)', 'object pixels kept', 'AP', 'AP50',
         'AP75', 'AP - dense [bootstrap over videos]', 'AP - dense [t over seeds]'],
        [[schedule_label(g['schedule'], depth), LABELS[g['selector']], len(g['seeds']),
          f"{g['pkr']:.3f}", f"{g['fg_recall']:.3f}", f"{100 * g['AP']:.1f}",
          f"{100 * g['AP50']:.1f}", f"{100 * g['AP75']:.1f}"]
         + [format_diff(g[k], **pct) if k in g else '' for k in ('diff_boot', 'diff_seeds')]
         for g in groups])
    lines += ['', 'Per seed (AP - dense of the same seed, paired bootstrap over videos):', '']
    lines += markdown_table(
        ['schedule', 'selection'] + [f'seed {s}' for s in meta['seeds']],
        [[g['schedule'], LABELS[g['selector']]]
         + [format_diff(g['per_seed'][s], **pct) if s in g['per_seed'] else ''
            for s in meta['seeds']] for g in groups if 'per_seed' in g])
    if contrasts:
        lines += ['', 'Selector contrasts (AP points, seed-mean, 95 % intervals):', '']
        lines += markdown_table(
            ['schedule', 'contrast', 'seeds', 'bootstrap over videos', 't over seeds'],
            [[c['schedule'], c.get('label', f"{LABELS[c['a']]} - {LABELS[c['b']]}"),
              len(c['seeds']), format_diff(c['boot'], **pct),
              format_diff(c['seed_interval'], **pct)] for c in contrasts])
    return '\n'.join(lines + fg_recall_lines(groups, meta['seeds']))


def fg_recall_lines(groups: Sequence[Dict], seeds: Sequence[int]) -> List[str]:
    """Table of the object pixels kept per seed by the pruned rows, with
    temporal - image-only per schedule (on a single-stage schedule: the
    selection at its one block)."""
    pruned = [g for g in groups if g['selector'] in SELECTORS]
    by_key = {(g['schedule'], g['selector']): g['fg_recall_per_seed'] for g in pruned}
    rows = [[g['schedule'], LABELS[g['selector']]]
            + [f"{g['fg_recall_per_seed'][s]:.3f}" if s in g['fg_recall_per_seed'] else ''
               for s in seeds] for g in pruned]
    for schedule in dict.fromkeys(g['schedule'] for g in pruned):
        a, b = by_key.get((schedule, 'temporal'), {}), by_key.get((schedule, 'image'), {})
        if set(a) & set(b):
            rows.append([schedule, 'temporal - image-only']
                        + [f'{a[s] - b[s]:+.3f}' if s in a and s in b else '' for s in seeds])
    if not rows:
        return []
    return ['', 'Object pixels kept in the pruned frames (share of ground-truth object pixels '
            'whose patch survived the last stage), per seed:', ''] + markdown_table(
                ['schedule', 'selection'] + [f'seed {s}' for s in seeds], rows)


def plot(groups: Sequence[Dict], out_file: str, depth: int, toy: str = 'hard') -> None:
    """AP - dense (bootstrap interval, seeds as dots) and object pixels kept,
    one column per schedule (and per truncation), one colour per selection;
    ``depth``: ViT blocks of the dense model, ``toy``: the toy set
    (title)."""
    fig, (ax, ax2) = plots.pyplot().subplots(1, 2, figsize=(11, 4))
    kinds = SELECTORS + ('truncated',)
    groups = [g for g in groups if parse_sweep(g['schedule']) is None]  # on the curve
    columns = []
    for g in groups:
        if 'diff_boot' in g and g['schedule'] not in columns:
            columns.append(g['schedule'])
    width = 0.25
    labelled = set()
    for g in groups:
        if 'diff_boot' not in g:
            continue
        j = kinds.index(g['selector'])
        in_column = [h['selector'] for h in groups
                     if h['schedule'] == g['schedule'] and 'diff_boot' in h]
        x = plots.dodge(columns.index(g['schedule']), in_column.index(g['selector']),
                        len(in_column), width)
        label = None if g['selector'] in labelled else LABELS[g['selector']]
        labelled.add(g['selector'])
        plots.interval_errorbar(ax, [x], [g['diff_boot']], scale=100, fmt='o', capsize=4,
                                color=f'C{j}', label=label)
        plots.seed_dots(ax, x, g['per_seed'].values(), scale=100, color=f'C{j}')
        ax2.bar([x], [g['fg_recall']], width=width * 0.9, color=f'C{j}', label=label)
    ax.axhline(0, color='k', ls='--', lw=1)
    ax.set_ylabel('AP - dense (points; 95 % bootstrap over videos)')
    ax.set_title(f'{toy.capitalize()} toy VIS: AP cost of the patch selection')
    ax2.set_ylabel('object pixels whose patch was kept')
    ax2.set_ylim(0, 1.02)
    ax2.set_title('Foreground kept in the pruned frames')
    for a in (ax, ax2):
        plots.category_axis(a, [textwrap.fill(SCHEDULES[s]['label'] if s in SCHEDULES
                                              else schedule_label(s, depth), 22)
                                for s in columns], fontsize=8)
        if labelled:
            a.legend(fontsize=8)
    plots.save_figure(fig, out_file)


# ----------------------------------------------------------------------------- PKR curve
def group_order(schedule: str, selector: str) -> Tuple:
    """Sort key of a group: dense, the named schedules (``paper`` first),
    the sweep (highest target PKR first), the truncations; within one
    schedule dense, temporal, image, random, truncated."""
    sweep = parse_sweep(schedule)
    return (schedule != 'dense', schedule.startswith(TRUNCATED), sweep is not None,
            -sweep[1] if sweep else 0, schedule != 'paper', schedule,
            (('dense',) + SELECTORS + ('truncated',)).index(selector))


def curve_keys(groups: Sequence[Dict], base: str) -> List[Tuple[str, str]]:
    """``(schedule, selector)`` of the groups on the PKR curves: the sweep
    of ``base`` and ``base`` itself (its ``g = 1`` point), pruned and
    compared with dense; none without a sweep group."""
    def on(schedule):
        sweep = parse_sweep(schedule)
        return schedule == base or (sweep is not None and sweep[0] == base)
    keys = [(g['schedule'], g['selector']) for g in groups
            if g['selector'] in SELECTORS and 'diff_boot' in g and on(g['schedule'])]
    return keys if any(parse_sweep(schedule) for schedule, _ in keys) else []


def group_draws(a: Mapping[int, dict], b: Mapping[int, dict],
                group_score: Callable[[Sequence[dict]], Callable],
                n_items: Callable[[dict], int], n_boot: int) -> np.ndarray:
    """:func:`mmsparse.utils.stats.bootstrap_draws` of the seed-mean score of group ``a``
    against group ``b`` (rows by seed) on the seeds both have, as
    :func:`mmsparse.experiment.tables.contrast` pairs them."""
    seeds = paired_seeds(a, b)
    rows_a, rows_b = [a[s] for s in seeds], [b[s] for s in seeds]
    return bootstrap_draws(group_score(rows_a), group_score(rows_b), n_items(rows_a[0]), n_boot)


def crossing(pkrs: Sequence[float], diffs: Sequence[float],
             threshold: float = -AP_LOSS) -> Tuple[Optional[float], str]:
    """Where a curve of AP differences first reaches ``threshold``, from
    its highest PKR down, by linear interpolation between its points.

    Returns:
        tuple: ``(pkr, 'inside')`` (in the swept range, an end included),
        ``(None, 'above')`` (the highest PKR is already below the
        threshold: the crossing lies at a higher PKR than swept) or
        ``(None, 'below')`` (no point reaches it: lower than swept, if
        at all).
    """
    points = sorted(zip(pkrs, diffs), key=lambda p: -p[0])
    if points[0][1] <= threshold:
        return (points[0][0], 'inside') if points[0][1] == threshold else (None, 'above')
    for (p0, d0), (p1, d1) in zip(points, points[1:]):
        if d1 <= threshold:
            return p0 + (threshold - d0) / (d1 - d0) * (p1 - p0), 'inside'
    return None, 'below'


def _quantile(values: np.ndarray, q: float) -> float:
    """Linear-interpolation quantile of sorted values that may hold -inf /
    +inf (censored replicates); between a finite and an infinite value the
    outer one."""
    pos = q * (len(values) - 1)
    i = int(math.floor(pos))
    a, b = values[i], values[min(i + 1, len(values) - 1)]
    if pos == i or a == b:
        return float(a)
    if np.isfinite(a) and np.isfinite(b):
        return float(a + (pos - i) * (b - a))
    return float(a if q < 0.5 else b)


def crossing_interval(pkrs: Sequence[float], replicates: np.ndarray,
                      threshold: float = -AP_LOSS, confidence: float = 0.95) -> Dict:
    """Percentile interval of the :func:`crossing` over bootstrap
    replicates of a curve.

    Args:
        pkrs (Sequence[float]): The points' PKRs.
        replicates (np.ndarray): ``(n_boot, points)``: the AP differences
            of each draw, points in the order of ``pkrs``.
        threshold (float): Defaults to ``-AP_LOSS``.
        confidence (float): Defaults to 0.95.

    Returns:
        dict: ``low`` / ``high`` (PKR, None outside the swept range) with
        ``low_where`` / ``high_where`` (``'inside'``, ``'above'``,
        ``'below'``), ``above`` / ``below`` (share of the replicates whose
        crossing lies outside the range), ``n_boot``, ``confidence``.
    """
    found = []
    for row in np.asarray(replicates, dtype=float):
        pkr, where = crossing(pkrs, row, threshold)
        found.append(pkr if where == 'inside' else math.inf if where == 'above' else -math.inf)
    found = np.sort(np.array(found))
    alpha = (1 - confidence) / 2
    out = dict(n_boot=len(found), confidence=confidence,
               above=float(np.mean(found == math.inf)), below=float(np.mean(found == -math.inf)))
    for key, q in (('low', alpha), ('high', 1 - alpha)):
        v = _quantile(found, q)
        out[key] = v if np.isfinite(v) else None
        out[f'{key}_where'] = 'inside' if np.isfinite(v) else 'above' if v > 0 else 'below'
    return out


def pruned_frame_pkr(pkr: float, num_frames: int) -> float:
    """PKR of the pruned frames from the PKR over all frames of videos of
    ``num_frames`` frames whose first frame runs dense."""
    return (num_frames * pkr - 1) / (num_frames - 1)


def pkr_curves(groups: Sequence[Dict], replicates: Mapping[Tuple[str, str], np.ndarray],
               num_frames: int, threshold: float = -AP_LOSS,
               confidence: float = 0.95) -> List[Dict]:
    """The AP-against-PKR curve of each selector and its crossing of
    ``threshold``.

    Args:
        groups (Sequence[dict]): The report's groups.
        replicates (Mapping): ``(schedule, selector)`` of each group on the
            curves (:func:`curve_keys`) -> :func:`group_draws` against
            dense.
        num_frames (int): Frames per video (the first dense): the pruned
            frames' PKR.
        threshold (float): Defaults to ``-AP_LOSS``.
        confidence (float): Defaults to 0.95.

    Returns:
        list[dict]: Per selector: ``selector``, ``threshold``, ``points``
        (highest PKR first: ``schedule``, ``target_pkr``, ``keep_ratio``,
        ``seeds``, ``pkr``, ``pkr_pruned``, ``AP``, ``diff_boot``,
        ``diff_seeds``, ``per_seed``) and ``crossing`` (``pkr``, ``where``
        of :func:`crossing`, ``pkr_pruned``, ``range`` (lowest, highest
        PKR) and the :func:`crossing_interval`).
    """
    by_key = {(g['schedule'], g['selector']): g for g in groups}
    curves = []
    for selector in SELECTORS:
        points = sorted((by_key[k] for k in replicates if k[1] == selector),
                        key=lambda g: -g['pkr'])
        if not points:
            continue
        pkrs = [g['pkr'] for g in points]
        pkr, where = crossing(pkrs, [g['diff_boot']['diff'] for g in points], threshold)
        draws = np.stack([replicates[(g['schedule'], selector)] for g in points], axis=1)
        found = dict(pkr=pkr, where=where, range=[min(pkrs), max(pkrs)],
                     pkr_pruned=None if pkr is None else pruned_frame_pkr(pkr, num_frames),
                     **crossing_interval(pkrs, draws, threshold, confidence))
        curves.append(dict(selector=selector, threshold=threshold, crossing=found, points=[
            dict(schedule=g['schedule'], target_pkr=g.get('target_pkr'),
                 keep_ratio=g.get('keep_ratio'), seeds=g['seeds'], pkr=g['pkr'],
                 pkr_pruned=pruned_frame_pkr(g['pkr'], num_frames), AP=g['AP'],
                 diff_boot=g['diff_boot'], diff_seeds=g['diff_seeds'],
                 per_seed=g['per_seed']) for g in points]))
    return curves


def _bound(value: Optional[float], where: str, lo: float, hi: float,
           fmt: Callable[[float], str] = '{:.3f}'.format, flip: bool = False) -> str:
    """A crossing PKR (or its image under a decreasing ``fmt`` with
    ``flip``) as text; outside the swept range ``[lo, hi]`` as a bound."""
    if where == 'inside':
        return fmt(value)
    above = (where == 'above') != flip
    return f"{'>' if above else '<'} {fmt(hi if where == 'above' else lo)}"


def curve_lines(curves: Sequence[Dict], meta: Mapping) -> List[str]:
    """The markdown of the curves: the points, then each selector's PKR at
    the AP loss with its bootstrap interval (``meta``: ``num_frames``,
    ``n_boot``)."""
    if not curves:
        return []
    pct = dict(scale=100, digits=1)
    frames = meta['num_frames']
    loss = 100 * curves[0]['threshold']
    lines = ['', f'AP against PKR (the PKR sweep): AP - dense per point, AP points with 95 % '
             'intervals (paired bootstrap over held-out videos, t over seeds). Sweep: the '
             'paper schedule scaled to a target PKR of a pruned frame, keep_i = paper_i ** g '
             '(g = 1: the paper schedule). PKR (test): measured over all frames, frame 0 of '
             f'each {frames}-frame video dense; pruned frames: ({frames} PKR - 1) / '
             f'{frames - 1}.', '']
    lines += markdown_table(
        ['selection', 'schedule', 'keep ratios', 'seeds', 'PKR (test)', 'PKR pruned frames',
         'AP', 'AP - dense [bootstrap over videos]', 'AP - dense [t over seeds]'],
        [[LABELS[c['selector']], p['schedule'],
          '/'.join(f'{k:g}' for k in p['keep_ratio']) if p['keep_ratio']
          else 'its own (g = 1)',
          len(p['seeds']), f"{p['pkr']:.3f}", f"{p['pkr_pruned']:.3f}",
          f"{100 * p['AP']:.1f}", format_diff(p['diff_boot'], **pct),
          format_diff(p['diff_seeds'], **pct)] for c in curves for p in c['points']])
    lines += ['', f'PKR at which each selection loses {-loss:g} AP against dense: the first '
              'crossing of the mean difference from the highest PKR down, linear between sweep '
              'points; 95 % interval: the same on each bootstrap draw of the videos (percentiles; '
              '"> x" / "< x": beyond the swept range). Patch sparsity = 1 - PKR of a pruned '
              'frame.', '']
    rows = []
    for c in curves:
        x = c['crossing']
        lo, hi = x['range']

        def both(fmt, flip=False, x=x, lo=lo, hi=hi):
            ends = [_bound(x[k], x[f'{k}_where'], lo, hi, fmt, flip) for k in ('low', 'high')]
            return (f"{_bound(x['pkr'], x['where'], lo, hi, fmt, flip)} "
                    f"[{', '.join(ends[::-1] if flip else ends)}]")
        sparsity = '{:.1%}'.format
        rows.append([LABELS[c['selector']], len(c['points']), f'{lo:.3f} - {hi:.3f}',
                     both('{:.3f}'.format),
                     f"{x['above']:.0%} / {x['below']:.0%}",
                     both(lambda p: f'{pruned_frame_pkr(p, frames):.3f}'),
                     both(lambda p: sparsity(1 - pruned_frame_pkr(p, frames)), flip=True)])
    lines += markdown_table(
        ['selection', 'points', 'swept PKR (test)', f'PKR (test) at {loss:g} AP',
         'draws above / below the range', f'PKR pruned frames at {loss:g} AP',
         f'patch sparsity of pruned frames at {loss:g} AP'], rows)
    return lines


def plot_curves(curves: Sequence[Dict], out_file: str, num_frames: int,
                toy: str = 'hard') -> None:
    """AP - dense against the measured PKR, one line per selection (95 %
    bootstrap intervals, seeds as dots), the AP-loss line and each
    selection's crossing (dotted) with its interval (shaded, clipped to the
    swept range); top axis: patch sparsity of the pruned frames."""
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for c in curves:
        color = f"C{SELECTORS.index(c['selector'])}"
        xs = [p['pkr'] for p in c['points']]
        plots.interval_errorbar(ax, xs, [p['diff_boot'] for p in c['points']], scale=100,
                                fmt='o-', capsize=3, color=color, label=LABELS[c['selector']])
        for x, p in zip(xs, c['points']):
            plots.seed_dots(ax, x, p['per_seed'].values(), scale=100, color=color)
        found = c['crossing']
        lo, hi = found['range']
        if found['where'] == 'inside':
            ax.axvline(found['pkr'], color=color, ls=':', lw=1)
        span = [found['low'] if found['low_where'] == 'inside' else (
            hi if found['low_where'] == 'above' else lo),
            found['high'] if found['high_where'] == 'inside' else (
                hi if found['high_where'] == 'above' else lo)]
        ax.axvspan(min(span), max(span), color=color, alpha=0.12, lw=0)
    ax.axhline(0, color='k', ls='--', lw=1)
    if curves:
        ax.axhline(100 * curves[0]['threshold'], color='gray', ls='-.', lw=1,
                   label=f"{100 * curves[0]['threshold']:g} AP")
    ax.set_xlabel(f'PKR (test, all frames; frame 0 of {num_frames} dense)')
    ax.set_ylabel('AP - dense (points; 95 % bootstrap over videos)')
    ax.set_title(f'{toy.capitalize()} toy VIS: AP against patch keep rate')
    ax.grid(alpha=0.3)

    def to_sparsity(p: Any) -> Any:
        return 100 * (1 - (num_frames * np.asarray(p) - 1) / (num_frames - 1))

    def from_sparsity(s: Any) -> Any:
        return ((1 - np.asarray(s) / 100) * (num_frames - 1) + 1) / num_frames
    top = ax.secondary_xaxis('top', functions=(to_sparsity, from_sparsity))
    top.set_xlabel('patch sparsity of the pruned frames (%)')
    if curves:
        ax.legend(fontsize=8)
    plots.save_figure(fig, out_file)
