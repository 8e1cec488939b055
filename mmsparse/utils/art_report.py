"""Report of the ART comparisons: the reproduction in the paper's regime
(``projects/hypersparse/run_reproduction.py``: the switch a run records,
accuracy per method and sparsity, paired differences to ART + HyperSparse,
the ART and λ0 tuning notes, two plots) and the plot of the toy VIS
comparison (``projects/hypersparse/run_vis_toy.py``).

The summary of the reproduction is JSON-able (``results.json``); the tables
and plots are made from it alone.
"""
import os
import os.path as osp
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from mmsparse.experiment import (atomic_write_json, items, markdown_table,
                                 plots, tables)
from mmsparse.utils.stats import format_diff

#: The reproduction's methods and their labels, in table order.
LABELS = {
    'dense': 'dense (same fine-tune schedule)',
    'art_hs': 'ART + HyperSparse',
    'art_l1': 'ART + L1',
    'art_l2': 'ART + L2',
    'oneshot': 'one-shot magnitude + FT',
    'gmp': 'GMP (cubic)',
}
ART_METHODS = ('art_hs', 'art_l1', 'art_l2')
PRUNING_METHODS = ART_METHODS + ('oneshot', 'gmp')
#: The reference row of the differences.
REFERENCE = 'art_hs'


def switch_record(runner: Any) -> Dict:
    """The switch of a trained runner's pruning hook (the first hook with
    ``target_sparsity``): its epoch and, for ART, the reason, whether it
    was forced, the ART epochs, the model step and the ART history; {}
    without such a hook."""
    hooks = [h for h in runner.hooks if hasattr(h, 'target_sparsity')]
    if not hooks:
        return {}
    hook = hooks[0]
    out = dict(switch_epoch=hook.switch_unit)
    info = getattr(hook, 'switch_info', None)
    if info:
        out.update(
            switch_reason=info['reason'],
            forced=info['reason'] != 'criterion',
            art_epochs=len(hook.history),
            model_step=info['model_step'],
            art_history=hook.history)
    return out


def method_row(method: str, sparsity: float, runs: Mapping[int, Dict],
               ref: Mapping[int, Dict], n_boot: int) -> Dict:
    """One row of the summary: the runs of ``method`` at ``sparsity`` by
    seed (accuracy mean and sample std; for ART λ0, forced switches, ART
    epochs and the training accuracies at the switch) and their paired
    differences to ART + HyperSparse (``ref``, by seed): t over seeds and a
    bootstrap over test digits of the seed-averaged correctness."""
    seeds = sorted(runs)
    ordered = [runs[s] for s in seeds]
    acc = [r['test_accuracy'] for r in ordered]
    mean, std = tables.mean_std(acc)
    row = dict(method=method, sparsity=sparsity, seeds=seeds, accuracy=acc,
               mean=mean, std=std,
               iterations=[r['iterations'] for r in ordered])
    if method in ART_METHODS:
        # training accuracies at the switch: a criterion switch can also
        # come from a collapsing dense model
        last = [(r.get('art_history') or [{}])[-1] for r in ordered]
        row.update(
            lambda_init=runs[min(runs)]['lambda_init'],
            forced=sum(bool(r.get('forced')) for r in runs.values()),
            art_epochs=[r.get('art_epochs') for r in ordered],
            dense_at_switch=[h.get('dense') for h in last],
            best_mean_at_switch=[h.get('best_mean') for h in last])
    if method != REFERENCE:
        diff = tables.contrast(
            runs, ref, items.item_mean_score('test_correct', 'test_digit_index'),
            len(set(ordered[0]['test_digit_index'])), 'test_accuracy', n_boot)
        if diff is not None:
            row['diff_seeds'] = diff['seed_interval']
            row['diff_bootstrap'] = diff['boot']
    return row


def summarize_runs(runs: Sequence[Dict], main: Sequence[Dict],
                   all_seeds: Sequence[int], schedule: Dict, tuning: Dict,
                   n_boot: int) -> Dict:
    """The reproduction's summary (``results.json``).

    Args:
        runs (Sequence[dict]): Every finished run (the cost).
        main (Sequence[dict]): The main runs to summarise (not empty).
        all_seeds (Sequence[int]): The seeds of every finished main run
            (those left out of ``main`` are named).
        schedule (dict): The resolved schedule.
        tuning (dict): The λ0 tuning (method -> selection).
        n_boot (int): Bootstrap draws.
    """
    groups = tables.by_seed(main, lambda r: (r['method'], r['sparsity']))
    seeds = sorted({r['seed'] for r in main})
    dense = groups.get(('dense', None), {})
    sparsities = sorted({r['sparsity'] for r in main
                         if r['sparsity'] is not None})
    methods = [m for m in PRUNING_METHODS
               if any(r['method'] == m for r in main)]
    cost = dict(
        runs=len(runs),
        wall_seconds=round(sum(r.get('seconds') or r.get('train_seconds', 0)
                               for r in runs), 1),
        cpu_seconds=round(sum(r.get('cpu_seconds', 0) for r in runs), 1))
    summary = dict(schedule=schedule, tuning=tuning,
                   n_test_images=len(main[0]['test_correct']),
                   cost=cost, seeds=seeds,
                   seeds_left_out=sorted(set(all_seeds) - set(seeds)),
                   n_test_digits=len(set(main[0]['test_digit_index'])),
                   dense=dict(seeds=sorted(dense), accuracy=[
                       dense[s]['test_accuracy'] for s in sorted(dense)]),
                   rows=[])
    for method in methods:
        for sparsity in sparsities:
            found = groups.get((method, sparsity))
            if found:
                summary['rows'].append(method_row(
                    method, sparsity, found,
                    groups.get((REFERENCE, sparsity), {}), n_boot))
    return summary


def find_row(summary: Dict, method: str, sparsity: float) -> Optional[Dict]:
    """The summary row of ``method`` at ``sparsity``, or None."""
    return next((r for r in summary['rows'] if r['method'] == method
                 and r['sparsity'] == sparsity), None)


def columns(summary: Dict) -> Tuple[List[float], List[str]]:
    """The sparsities and the pruning methods of the summary rows."""
    sparsities = sorted({r['sparsity'] for r in summary['rows']})
    methods = [m for m in PRUNING_METHODS
               if any(r['method'] == m for r in summary['rows'])]
    return sparsities, methods


def _accuracy_cell(row: Optional[Dict]) -> str:
    if row is None:
        return '–'
    text = f"{row['mean']:.2f} ± {row['std']:.2f}"
    if row.get('forced'):
        text += f" ({row['forced']}/{len(row['seeds'])} forced)"
    return text


def _diff_cell(row: Optional[Dict]) -> str:
    if row is None or 'diff_seeds' not in row:
        return '–'
    return (format_diff(row['diff_seeds']) + ' / ' +
            format_diff(row['diff_bootstrap']).split(' ', 1)[1])


def _dense_text(dense_acc: Sequence[float]) -> str:
    if len(dense_acc) > 1:
        return f'{np.mean(dense_acc):.2f} ± {np.std(dense_acc, ddof=1):.2f}'
    return f'{dense_acc[0]:.2f}' if dense_acc else '–'


def table_lines(summary: Dict) -> List[str]:
    """The accuracy table and the table of differences to ART +
    HyperSparse."""
    sparsities, methods = columns(summary)
    left_out = summary['seeds_left_out']
    header = ['method'] + [f'{100 * s:g} %' for s in sparsities]
    align = 'l' + 'r' * len(sparsities)

    def table(cell, shown):
        return markdown_table(header, [
            [LABELS[m]] + [cell(find_row(summary, m, s)) for s in sparsities]
            for m in shown], align)

    caption = (
        f"Test accuracy (%) on {summary['n_test_images']} test images "
        f"({summary['n_test_digits']} held-out digits), mean ± sample std "
        f"(ddof 1) over seeds {summary['seeds']}" + (
            f' (complete seeds only; partial seeds {left_out} left out)'
            if left_out else '') + '. Dense (same fine-tune schedule): '
        + _dense_text(summary['dense']['accuracy']) + '.')
    return [caption, ''] + table(_accuracy_cell, methods) + [
        '', 'Difference to ART + HyperSparse (percentage points), 95 % '
        'intervals: t over paired seeds / paired bootstrap over test '
        'digits (seed-averaged correctness).', ''] + table(
            _diff_cell, [m for m in methods if m != REFERENCE])


def _art_line(method: str, sparsity: float, row: Dict) -> str:
    """λ0, forced switches, ART epochs and the accuracies at the switch of
    one ART row."""
    ep = [e for e in row['art_epochs'] if e is not None]
    dense_sw = [v for v in row['dense_at_switch'] if v is not None]
    best_sw = [v for v in row['best_mean_at_switch'] if v is not None]
    text = (f"- {LABELS[method]} @ {100 * sparsity:g} %: λ0 = "
            f"{row['lambda_init']:g}, forced {row['forced']}/"
            f"{len(row['seeds'])}")
    if ep:
        text += f', ART epochs {np.mean(ep):.1f} ({min(ep)}-{max(ep)})'
    if dense_sw and best_sw:
        text += (f', at the switch {np.mean(dense_sw):.1f} / '
                 f'{np.mean(best_sw):.1f} %')
    return text


def notes_lines(summary: Dict, tuning: Dict, tune_seed: int,
                tune_sparsity: float) -> List[str]:
    """ART (λ0, forced switches, epochs), the λ0 tuning (of the runs with
    training seed ``tune_seed`` at ``tune_sparsity``) and the cost."""
    sparsities, _ = columns(summary)
    cost = summary['cost']
    lines = ['', 'ART: λ0 (tuned), switches forced / runs, ART epochs '
             '(mean, min-max), training accuracy at the switch (dense / '
             'best window of the pruned copy, mean):', '']
    lines += [_art_line(method, s, find_row(summary, method, s))
              for method in ART_METHODS for s in sparsities
              if find_row(summary, method, s) is not None]
    if tuning:
        lines += ['', f'λ0 tuning (validation accuracy %, seed '
                  f'{tune_seed}, {100 * tune_sparsity:g} %):', '']
        for method, sel in tuning.items():
            cands = ', '.join(
                f"{c['lambda_init']:g}: {c['val_accuracy']:.2f}"
                f" ({c['switch_reason']}, {c['art_epochs']} ep)"
                for c in sel['candidates'])
            lines.append(f"- {LABELS[method]}: {cands} → "
                         f"{sel['lambda_init']:g}")
    lines += ['', f"Cost: {cost['runs']} runs, {cost['wall_seconds'] / 3600:.2f} "
              f"h of run wall time (summed over runs), "
              f"{cost['cpu_seconds'] / 3600:.2f} h of CPU time."]
    return lines


def plot_summary(summary: Dict, out_dir: str) -> None:
    """``accuracy.png`` (accuracy vs sparsity) and ``diff_to_hs.png``
    (the paired differences to ART + HyperSparse, t intervals) in
    ``out_dir``."""
    from mmsparse.utils.pruning_plots import plot_comparison
    sparsities, methods = columns(summary)
    by_method = {}
    for row in summary['rows']:
        by_method.setdefault(LABELS[row['method']],
                             {})[row['sparsity']] = row['accuracy']
    plot_comparison(
        by_method, osp.join(out_dir, 'accuracy.png'),
        dense=summary['dense']['accuracy'],
        title='hard digits, ResNet-8 (77k prunable weights), '
        f"{summary['n_test_images']} test images")
    fig, ax = plots.pyplot().subplots(figsize=(7, 4.5))
    others = [m for m in methods if m != REFERENCE]
    width = 0.8 / max(len(others), 1)
    for k, method in enumerate(others):
        found = [(i, find_row(summary, method, s))
                 for i, s in enumerate(sparsities)]
        found = [(i, r) for i, r in found if r and 'diff_seeds' in r]
        plots.interval_errorbar(
            ax, [plots.dodge(i, k, len(others), width) for i, _ in found],
            [r['diff_seeds'] for _, r in found], fmt='o', capsize=3,
            label=LABELS[method])
    ax.axhline(0, color='k', lw=0.8)
    ax.set_xticks(range(len(sparsities)))
    ax.set_xticklabels([f'{100 * s:g} %' for s in sparsities])
    ax.set_xlabel('sparsity')
    ax.set_ylabel('test accuracy − ART + HyperSparse (pp)')
    ax.set_title('paired difference per seed, 95 % t interval')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    plots.save_figure(fig, osp.join(out_dir, 'diff_to_hs.png'), dpi=120)


def write_summary(out_dir: str, summary: Dict, tune_seed: int,
                  tune_sparsity: float) -> str:
    """``results.json``, ``results.md`` (the tables and notes, returned)
    and the plots of ``summary`` in ``out_dir``, each file written
    atomically."""
    atomic_write_json(osp.join(out_dir, 'results.json'), summary, indent=1)
    lines = table_lines(summary) + notes_lines(summary, summary['tuning'], tune_seed,
                                               tune_sparsity)
    table = '\n'.join(lines) + '\n'
    md_path = osp.join(out_dir, 'results.md')
    with open(md_path + '.tmp', 'w') as f:
        f.write(table)
    os.replace(md_path + '.tmp', md_path)
    plot_summary(summary, out_dir)
    return table


def _criterion_panel(ax, results: Sequence[Dict]) -> None:
    """The ART rows' stop criterion: training loss of the dense model and
    of the pruned copy per ART step, the switch as a vertical line."""
    for j, r in enumerate(r for r in results if r['method'] == 'art'):
        hist = r.get('art_history') or []
        if not hist:
            continue
        units = [h['unit'] for h in hist]
        ax.plot(units, [h['dense'] for h in hist], '-', color=f'C{j}',
                label=f"seed {r['seed']} dense")
        ax.plot(units, [h['pruned'] for h in hist], '--', color=f'C{j}',
                label=f"seed {r['seed']} pruned copy")
        ax.axvline(r['switch_iter'], color=f'C{j}', lw=0.8, alpha=0.5)
    ax.set_xlabel('iteration')
    ax.set_ylabel('training loss on the criterion batches')
    ax.set_title('ART stop criterion (vertical: switch)')
    ax.set_yscale('log')
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=7)


def plot_vis_toy(groups: Sequence[Dict], results: Sequence[Dict],
                 out_file: str, sparsity: float) -> None:
    """The toy VIS comparison: AP per method (seeds as dots), AP - ART
    (bootstrap interval over videos, seeds as dots) and the ART rows' stop
    criterion.

    Args:
        groups (Sequence[dict]): Per method (in order): ``method``,
            ``label``, ``AP`` and, except ART, ``diff_art_boot`` and
            ``per_seed_art``.
        results (Sequence[dict]): The rows (``method``, ``seed``, ``AP``;
            ART rows ``art_history`` and ``switch_iter``).
        out_file (str): The PNG.
        sparsity (float): The pruned rows' sparsity (title).
    """
    fig, (ax, ax2, ax3) = plots.pyplot().subplots(1, 3, figsize=(15, 4))
    for i, g in enumerate(groups):
        ax.bar(i, 100 * g['AP'], color=f'C{i}', alpha=0.6)
        seeds = [100 * r['AP'] for r in results if r['method'] == g['method']]
        ax.plot([i] * len(seeds), seeds, 'k.')
        if 'diff_art_boot' in g:
            plots.interval_errorbar(ax2, [i], [g['diff_art_boot']], scale=100, fmt='o',
                                    capsize=4, color=f'C{i}')
            plots.seed_dots(ax2, i, g['per_seed_art'].values(), scale=100, color=f'C{i}')
    for a in (ax, ax2):
        plots.category_axis(a, [g['label'].replace(' + ', '\n+ ').replace(' (', '\n(')
                                for g in groups], fontsize=8)
    ax.set_ylabel('AP (held-out videos, %; dots: seeds)')
    ax.set_title(f'Hard toy VIS, {100 * sparsity:g} % sparsity, equal iterations')
    ax2.axhline(0, color='k', ls='--', lw=1)
    ax2.set_ylabel('AP - ART (points; 95 % bootstrap over videos)')
    ax2.set_title('Difference to ART + HyperSparse')
    _criterion_panel(ax3, results)
    plots.save_figure(fig, out_file)
