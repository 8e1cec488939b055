"""Plot pieces of the comparison reports: paired differences with their
intervals, per-seed dots, groups side by side in a column.

Plain matplotlib (Agg); each function draws on a given axis, so a driver
keeps its figure's layout and calls these for the parts every comparison
has.
"""
from typing import Any, Iterable, Mapping, Sequence

import numpy as np


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def dodge(center: float, index: int, count: int, width: float) -> float:
    """x of the ``index``-th of ``count`` points side by side around
    ``center``, ``width`` apart."""
    return center + (index - (count - 1) / 2) * width


def interval_errorbar(ax: Any, xs: Sequence[float],
                      intervals: Sequence[Mapping[str, float]],
                      scale: float = 1, **kwargs) -> Any:
    """Points at ``scale * diff`` with error bars to ``low`` / ``high`` of
    each interval (:mod:`mmsparse.utils.stats` dicts; a NaN bound, e.g. a t
    interval of one seed, draws no bar on that side); ``kwargs`` go to
    ``ax.errorbar`` (one call for all points)."""
    ys, lo, hi = [], [], []
    for d in intervals:
        ys.append(scale * d['diff'])
        lo.append(scale * (d['diff'] - d['low']) if np.isfinite(d['low'])
                  else 0)
        hi.append(scale * (d['high'] - d['diff']) if np.isfinite(d['high'])
                  else 0)
    return ax.errorbar(xs, ys, yerr=[lo, hi], **kwargs)


def seed_dots(ax: Any, x: float, intervals: Iterable[Mapping[str, float]],
              scale: float = 1, **kwargs) -> Any:
    """The per-seed differences (``diff`` of each interval) as dots at
    ``x`` (``kwargs`` go to ``ax.plot``; half transparent by default)."""
    values = [scale * d['diff'] for d in intervals]
    return ax.plot([x] * len(values), values, '.',
                   **dict(dict(alpha=0.5), **kwargs))


def category_axis(ax: Any, labels: Sequence[str], **kwargs) -> None:
    """One tick per category at 0, 1, ... with ``labels`` (``kwargs`` go
    to ``set_xticklabels``) and a light horizontal grid."""
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, **kwargs)
    ax.grid(alpha=0.3, axis='y')


def save_figure(fig: Any, path: str, dpi: int = 110) -> str:
    """Lay out ``fig``, write it to ``path`` and close it; returns the
    path."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path
