"""PNG plots of a P3B run (matplotlib, Agg backend).

Input is the list of update records of
:class:`mmsparse.p3b.pruner.P3BPruner` (``history``).
"""
import os
import os.path as osp
from typing import Mapping, Optional, Sequence


def _pyplot():
    import matplotlib
    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: str) -> str:
    os.makedirs(osp.dirname(osp.abspath(path)) or '.', exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def plot_keep_ratio_history(history: Sequence[Mapping], path: str,
                            iters_per_epoch: Optional[int] = None) -> str:
    """Keep ratio of every sub-block over the run (attention and MLP panels).

    Late blocks that get their parameters back ("reactivation") show as
    rising curves. The dashed black line is the model's global keep ratio.

    Args:
        history (Sequence[Mapping]): Update records (``step``,
            ``block_keep``, ``global_keep``).
        path (str): Output PNG.
        iters_per_epoch (int, optional): Plot over epochs instead of
            iterations. Defaults to None.

    Returns:
        str: ``path``.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    scale = float(iters_per_epoch or 1)
    xs = [(h['step'] + 1) / scale for h in history]
    num = len(history[0]['block_keep']) if history else 0
    cmap = plt.get_cmap('viridis')
    for ax, offset, title in ((axes[0], 0, 'attention'), (axes[1], 1, 'MLP')):
        layers = range(offset, num, 2)
        for j in layers:
            depth = j // 2
            ax.plot(xs, [h['block_keep'][j] for h in history], '.-',
                    color=cmap(depth / max(num // 2 - 1, 1)),
                    label=f'layer {depth}')
        ax.plot(xs, [h['global_keep'] for h in history], 'k--', lw=2,
                label='model (global)')
        ax.set_title(f'{title} sub-blocks: keep ratio')
        ax.set_xlabel('epoch' if iters_per_epoch else 'iteration')
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel('kept / dense parameters')
    axes[1].legend(fontsize=7, ncol=2, loc='lower left')
    return _save(fig, path)


def plot_param_allocation(dense: Sequence[float], kept: Sequence[float],
                          path: str, title: str = '') -> str:
    """Dense vs kept parameters per sub-block (bars).

    Args:
        dense (Sequence[float]): Dense parameters per sub-block
            (attention, MLP, attention, ...).
        kept (Sequence[float]): Kept parameters per sub-block.
        path (str): Output PNG.
        title (str): Figure title. Defaults to ''.

    Returns:
        str: ``path``.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(dense)), 4))
    xs = list(range(len(dense)))
    from matplotlib.patches import Patch
    ax.bar(xs, dense, color='0.85')
    colors = ['tab:blue' if j % 2 == 0 else 'tab:orange' for j in xs]
    ax.bar(xs, kept, color=colors)
    ax.set_xticks(xs)
    ax.set_xticklabels([f'{j // 2}{"a" if j % 2 == 0 else "m"}' for j in xs],
                       fontsize=7)
    ax.set_xlabel('sub-block (layer, a = attention, m = MLP)')
    ax.set_ylabel('parameters')
    total_d, total_k = sum(dense), sum(kept)
    ax.set_title(title or f'final allocation: {total_k / 1e6:.3f}M of '
                 f'{total_d / 1e6:.3f}M block parameters')
    ax.legend(handles=[
        Patch(color='0.85', label='dense'),
        Patch(color='tab:blue', label='attention kept'),
        Patch(color='tab:orange', label='MLP kept')
    ], fontsize=8)
    return _save(fig, path)


def plot_benefit_history(history: Sequence[Mapping], path: str) -> Optional[
        str]:
    """Mean block benefit (cls and patch probes) per update as heat maps.

    Args:
        history (Sequence[Mapping]): Update records with ``benefit_cls`` and
            ``benefit_patch``.
        path (str): Output PNG.

    Returns:
        str | None: ``path``, or None without benefit records.
    """
    rows = [h for h in history if h.get('benefit_cls') is not None]
    if not rows:
        return None
    import numpy as np
    plt = _pyplot()
    fig, axes = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for ax, key in zip(axes, ('benefit_cls', 'benefit_patch')):
        data = np.array([h[key] for h in rows]).T
        im = ax.imshow(data, aspect='auto', cmap='coolwarm', origin='lower',
                       vmin=-np.abs(data).max(), vmax=np.abs(data).max())
        ax.set_ylabel('sub-block')
        ax.set_title(f'{key.replace("_", " ")} (CE(in) - CE(out))')
        fig.colorbar(im, ax=ax)
    axes[-1].set_xticks(range(len(rows)))
    axes[-1].set_xticklabels([str(h['step']) for h in rows], rotation=90,
                             fontsize=6)
    axes[-1].set_xlabel('update at iteration')
    return _save(fig, path)


def plot_p3b_run(out_dir: str, history: Sequence[Mapping],
                 dense: Sequence[float], kept: Sequence[float],
                 iters_per_epoch: Optional[int] = None) -> None:
    """The three plots of a P3B run in ``out_dir``: keep ratio per block
    (``keep_ratio_per_block.png``), final parameter allocation
    (``param_allocation.png``) and block benefit (``block_benefit.png``).

    Args:
        out_dir (str): Output folder.
        history (Sequence[Mapping]): Update records.
        dense (Sequence[float]): Dense parameters per sub-block.
        kept (Sequence[float]): Kept parameters per sub-block.
        iters_per_epoch (int, optional): Plot the history over epochs.
            Defaults to None.
    """
    plot_keep_ratio_history(history,
                            osp.join(out_dir, 'keep_ratio_per_block.png'),
                            iters_per_epoch)
    plot_param_allocation(dense, kept,
                          osp.join(out_dir, 'param_allocation.png'))
    plot_benefit_history(history, osp.join(out_dir, 'block_benefit.png'))
