"""Report of the VPP toy comparison (``projects/vpp/run_toy_comparison.py``):
the markdown tables (AP per schedule and selection with the differences to
the dense rows, per seed, the selector contrasts, the object pixels kept)
and the plot, from the groups and contrasts its summary holds.

A group: ``schedule``, ``selector``, ``seeds``, the seed means of ``pkr``,
``fg_recall``, AP, AP50 and AP75, ``fg_recall_per_seed`` and, for a row
compared with the dense rows, ``diff_boot`` / ``diff_seeds`` / ``per_seed``.
"""
import textwrap
from typing import Dict, List, Mapping, Sequence

from mmsparse.experiment import format_option, markdown_table, plots
from mmsparse.utils.stats import format_diff
from mmsparse.utils.vpp_toy_plan import (LABELS, SCHEDULES, SELECTORS,
                                         schedule_label)


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
