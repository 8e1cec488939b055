"""Plots of training logs (PNG)."""
import json
import os.path as osp
from typing import Optional, Sequence


def read_scalars(scalars_file: str):
    """Read mmengine's ``vis_data/scalars.json`` (one json dict a line)."""
    rows = []
    with open(scalars_file) as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows


def plot_scalar_curves(scalars_file: str,
                       out_file: str,
                       keys: Sequence[str] = ('loss', ),
                       title: Optional[str] = None) -> Optional[str]:
    """Plot scalar curves over iterations from mmengine's scalars.json.

    Args:
        scalars_file (str): ``<work_dir>/<timestamp>/vis_data/scalars.json``.
        out_file (str): PNG path.
        keys (Sequence[str]): Scalars to plot (missing ones are skipped).
            Defaults to ('loss', ).
        title (str, optional): Figure title. Defaults to None.

    Returns:
        str | None: The PNG path, or None when no key was found.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    rows = read_scalars(scalars_file)
    fig, ax = plt.subplots(figsize=(7, 4))
    drawn = 0
    for key in keys:
        pts = [(r.get('iter', r.get('step')), r[key]) for r in rows
               if key in r]
        if not pts:
            continue
        xs, ys = zip(*pts)
        ax.plot(xs, ys, label=key)
        drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel('iteration')
    ax.set_ylabel('value')
    ax.set_yscale('log')
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out_file, dpi=100)
    plt.close(fig)
    return osp.abspath(out_file)


#: Panels of :func:`plot_log_panels`: (title, log-scale y, key rule). A key
#: goes to the first panel whose rule matches; keys matching none are left out.
LOG_PANELS = (
    ('losses', True, lambda k: k == 'loss' or (k.startswith('loss') and '.' not in k)),
    ('evaluation', False, lambda k: ('mAP' in k and not k.endswith(('_s', '_m', '_l')))
     or k.startswith('accuracy/') or k.endswith('/accuracy')),
    ('sparsity and keep ratios', False, lambda k: k == 'sparsity' or 'keep' in k
     or k.endswith('pkr') or k.endswith('fg_recall')),
    ('ART lambda', True, lambda k: k == 'art_lambda'),
    ('learning rate', True, lambda k: k == 'lr' or k.endswith('_lr')),
)


def scalar_series(rows, key: str, phase: Optional[str] = None):
    """``(iterations, values)`` of one scalar in mmengine's scalars.json rows.

    Training rows carry ``iter``. Validation rows carry only ``step``, which
    is the epoch (0 in an iteration-based run) unless ``LoggerHook`` has
    ``log_metric_by_epoch=False``; they are placed at the last training
    iteration logged before them (their ``step`` when none was).

    Args:
        rows (list[dict]): :func:`read_scalars` of one run.
        key (str): The scalar.
        phase (str, optional): 'train' or 'val' rows only. Defaults to None
            (both).
    """
    pts, last_iter = [], None
    for r in rows:
        if 'iter' in r:
            last_iter = r['iter']
        if phase is not None and ('iter' in r) != (phase == 'train'):
            continue
        if key in r and isinstance(r[key], (int, float)):
            pts.append((r['iter'] if 'iter' in r else
                        last_iter if last_iter is not None else r.get('step'), r[key]))
    return tuple(zip(*pts)) if pts else ((), ())


def assign_panels(keys, panels=LOG_PANELS):
    """``{panel title: [keys]}`` for the keys of a run (panels without keys
    left out, in the order of ``panels``)."""
    found = {}
    for key in sorted(keys):
        for title, _, rule in panels:
            if rule(key):
                found.setdefault(title, []).append(key)
                break
    return {title: found[title] for title, _, _ in panels if title in found}


def plot_log_panels(runs, out_file: str, keys=None, title: Optional[str] = None) -> str:
    """Curves of one or more training runs, one panel per kind of scalar.

    Args:
        runs (dict): ``{run name: scalars.json rows}`` (:func:`read_scalars`).
        out_file (str): PNG path.
        keys (Sequence[str], optional): Plot only these keys, in one panel.
            Defaults to None: every key of :data:`LOG_PANELS` found (losses,
            AP / accuracy, sparsity and keep ratios, ART's lambda, lr).
        title (str, optional): Figure title. Defaults to None.

    Returns:
        str: The PNG path.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    all_keys = {k for rows in runs.values() for r in rows for k in r}
    if keys:
        missing = [k for k in keys if k not in all_keys]
        if len(missing) == len(keys):
            raise KeyError(f'plot_log_panels: none of the keys {list(keys)} is in the logs; '
                           f'logged keys: {sorted(all_keys)}')
        panels = {'selected scalars': [k for k in keys if k in all_keys]}
        log_y = {'selected scalars': False}
    else:
        panels = assign_panels(all_keys)
        log_y = {t: log for t, log, _ in LOG_PANELS}
        if not panels:
            raise KeyError('plot_log_panels: no loss, metric, sparsity, keep ratio, lambda '
                           f'or lr in the logs; logged keys: {sorted(all_keys)}')
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.8 * len(panels) + 0.4),
                             squeeze=False)
    colors = list(plt.cm.tab10.colors) + list(plt.cm.Dark2.colors)  # 18 distinct lines
    for ax, (panel, panel_keys) in zip(axes[:, 0], panels.items()):
        ax.set_prop_cycle(color=colors)
        for run, rows in runs.items():
            for key in panel_keys:
                series = {phase: scalar_series(rows, key, phase) for phase in ('train', 'val')}
                for phase, (xs, ys) in series.items():
                    if not xs:
                        continue
                    label = key if len(runs) == 1 else f'{run}: {key}'
                    if phase == 'val' and series['train'][0]:
                        label += ' (val)'  # the key is logged in training too
                    style = ('o' if len(xs) < 20 else '') + ('--' if phase == 'val' else '-')
                    ax.plot(xs, ys, style, label=label, markersize=3, linewidth=1.2)
        if log_y[panel] and all(v > 0 for line in ax.get_lines() for v in line.get_ydata()):
            ax.set_yscale('log')
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel('iteration')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2 if len(ax.get_lines()) > 6 else 1)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(out_file, dpi=100)
    plt.close(fig)
    return osp.abspath(out_file)
