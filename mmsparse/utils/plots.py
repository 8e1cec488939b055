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
