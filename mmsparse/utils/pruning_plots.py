"""PNG plots of pruning runs (matplotlib, Agg backend)."""
import os
import os.path as osp
from typing import Dict, Mapping, Optional, Sequence

import numpy as np


def _pyplot():
    import matplotlib
    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: str) -> str:
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def plot_art_curves(history: Sequence[Mapping[str, float]],
                    path: str,
                    metric: str = 'accuracy',
                    unit: str = 'epoch',
                    switch: Optional[int] = None,
                    val_history: Optional[Sequence[Mapping]] = None) -> str:
    """λ and the dense / magnitude-pruned scores over ART steps.

    Args:
        history (Sequence[Mapping]): One dict per ART step with keys ``unit``,
            ``lambda``, ``dense``, ``pruned``, ``window_mean``.
        path (str): Output PNG.
        metric (str): Name of the score. Defaults to 'accuracy'.
        unit (str): Name of the x unit. Defaults to 'epoch'.
        switch (int, optional): Unit of the switch to fine-tuning.
        val_history (Sequence[Mapping], optional): Dicts with ``unit`` and
            ``value`` (validation metric) drawn on the lower panel.

    Returns:
        str: ``path``.
    """
    plt = _pyplot()
    fig, (ax_l, ax_m) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    xs = [h['unit'] for h in history]
    if xs:
        ax_l.semilogy(xs, [h['lambda'] for h in history], 'k.-')
        ax_m.plot(xs, [h['dense'] for h in history], 'b.-', label='dense')
        ax_m.plot(xs, [h['pruned'] for h in history],
                  'r.-',
                  label='magnitude-pruned copy')
        ax_m.plot(xs, [h['window_mean'] for h in history],
                  'r--',
                  alpha=0.6,
                  label='pruned, window mean')
    if val_history:
        ax_m.plot([v['unit'] for v in val_history],
                  [v['value'] for v in val_history],
                  'g.-',
                  label='validation')
    for ax in (ax_l, ax_m):
        if switch is not None:
            ax.axvline(switch, color='gray', ls=':', label='_switch')
        ax.grid(alpha=0.3)
    ax_l.set_ylabel('λ')
    ax_l.set_title('ART: regularization strength and pruned vs dense')
    ax_m.set_ylabel(metric)
    ax_m.set_xlabel(unit)
    ax_m.legend(loc='best', fontsize=8)
    return _save(fig, path)


def plot_layer_sparsity(per_layer: Mapping[str, float],
                        path: str,
                        title: str = 'per-layer sparsity') -> str:
    """Horizontal bar chart of the sparsity (fraction pruned) per layer."""
    plt = _pyplot()
    names = list(per_layer)
    height = max(3.0, 0.22 * len(names) + 1.0)
    fig, ax = plt.subplots(figsize=(7, height))
    ax.barh(range(len(names)), [100 * per_layer[n] for n in names])
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel('sparsity (%)')
    ax.set_title(title)
    ax.grid(axis='x', alpha=0.3)
    return _save(fig, path)


def plot_weight_histogram(magnitudes: np.ndarray,
                          path: str,
                          threshold: Optional[float] = None,
                          title: str = 'weight magnitudes') -> str:
    """Histogram of ``log10|w|`` with the pruning threshold."""
    plt = _pyplot()
    mags = np.asarray(magnitudes, dtype=np.float64).ravel()
    nonzero = mags[mags > 0]
    fig, ax = plt.subplots(figsize=(7, 4))
    if nonzero.size:
        ax.hist(np.log10(nonzero), bins=100, color='steelblue')
    if threshold is not None and threshold > 0:
        ax.axvline(np.log10(threshold), color='r', ls='--',
                   label=f'threshold {threshold:.3g}')
        ax.legend(loc='best', fontsize=8)
    ax.set_xlabel('log10 |w|')
    ax.set_ylabel('count')
    ax.set_title(f'{title} ({mags.size - nonzero.size} exact zeros)')
    return _save(fig, path)


def plot_comparison(results: Dict[str, Dict[float, Sequence[float]]],
                    path: str,
                    dense: Optional[Sequence[float]] = None,
                    ylabel: str = 'test accuracy (%)',
                    title: str = '') -> str:
    """Accuracy vs sparsity for several methods (mean ± sample std over
    seeds, ddof 1; no bar for a single seed).

    Args:
        results (dict): ``{method: {sparsity: [value per seed]}}``.
        path (str): Output PNG.
        dense (Sequence[float], optional): Dense values per seed (a band).
        ylabel (str): Y label. Defaults to 'test accuracy (%)'.
        title (str): Title. Defaults to ''.

    Returns:
        str: ``path``.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    all_sparsities = sorted({s for v in results.values() for s in v})
    ticks = list(range(len(all_sparsities)))
    for method, by_sparsity in results.items():
        xs, means, stds = [], [], []
        for i, sparsity in enumerate(all_sparsities):
            vals = by_sparsity.get(sparsity)
            if vals:
                xs.append(i)
                means.append(float(np.mean(vals)))
                stds.append(float(np.std(vals, ddof=1))
                            if len(vals) > 1 else 0.0)
        ax.errorbar(xs, means, yerr=stds, marker='o', capsize=3,
                    label=method)
    if dense:
        mean = float(np.mean(dense))
        ax.axhline(mean, color='k', ls=':', label=f'dense ({mean:.1f})')
    ax.set_xticks(ticks)
    ax.set_xticklabels([f'{100 * s:g} %' for s in all_sparsities])
    ax.set_xlabel('sparsity')
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc='best', fontsize=8)
    return _save(fig, path)
