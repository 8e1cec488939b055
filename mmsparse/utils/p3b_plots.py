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


def sub_block_name(j: int) -> str:
    """Name of sub-block ``j`` (attention and MLP of each layer in turn):
    ``'<layer>.attn'`` or ``'<layer>.mlp'``."""
    return f'{j // 2}.{"attn" if j % 2 == 0 else "mlp"}'


def plot_benefit_curves(epochs: Sequence[float], benefit: Sequence[Sequence[float]],
                        path: str) -> str:
    """Block benefit of every sub-block over a training (e.g. the mean over
    seeds of a dense run's), attention and MLP sub-blocks in two panels.

    Args:
        epochs (Sequence[float]): The T epochs of the records.
        benefit (Sequence[Sequence[float]]): (T, S) benefit of the S
            sub-blocks at each epoch.
        path (str): Output PNG.

    Returns:
        str: ``path``.
    """
    import numpy as np
    plt = _pyplot()
    mean = np.asarray(benefit)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    cmap = plt.get_cmap('viridis')
    for j in range(mean.shape[1]):
        axes[j % 2].plot(epochs, mean[:, j], color=cmap(j / mean.shape[1]),
                         label=sub_block_name(j))
    for ax, kind in zip(axes, ('attention', 'MLP')):
        ax.set_title(f'{kind} sub-blocks: benefit during the dense transfer')
        ax.set_xlabel('epoch')
        ax.axhline(0, color='k', lw=0.6)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    axes[0].set_ylabel('block benefit ΔCE (mean cls/patch, over seeds)')
    return _save(fig, path)


def plot_keep_ratio_runs(runs: Sequence[Sequence[tuple]], path: str) -> str:
    """Keep ratio of every sub-block over the epochs of several P3B runs:
    one row of panels per entry of ``runs``, one panel per run in it.

    Args:
        runs (Sequence[Sequence[tuple]]): Rows of ``(title, history)``,
            ``history`` as the hook writes it (``history.json``:
            ``iters_per_epoch`` and the update records).
        path (str): Output PNG.

    Returns:
        str: ``path``.
    """
    import numpy as np
    plt = _pyplot()
    width = max(len(r) for r in runs)
    fig, axes = plt.subplots(len(runs), width, figsize=(5.5 * width, 3.5 * len(runs)),
                             squeeze=False)
    for row_axes, row in zip(axes, runs):
        for ax, (title, hist) in zip(row_axes, row):
            x = [(h['step'] + 1) / hist['iters_per_epoch'] for h in hist['history']]
            ks = np.array([h['block_keep'] for h in hist['history']])
            for j in range(ks.shape[1]):
                ax.plot(x, ks[:, j], color=plt.get_cmap('viridis')(j / ks.shape[1]),
                        ls='-' if j % 2 == 0 else '--', label=sub_block_name(j))
            ax.set_title(title)
            ax.set_xlabel('epoch')
            ax.set_ylabel('block keep ratio')
            ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=6, ncol=2)
    return _save(fig, path)


#: colours of the pruning methods in the comparison plots
METHOD_COLORS = {'P3B': 'tab:red', 'P3B-frozen': 'tab:orange',
                 'uniform': 'tab:blue', 'magnitude': 'tab:green'}


def plot_accuracy_vs_params(summary: Sequence[Mapping], dense_params: float,
                            path: str) -> str:
    """Top-1 (mean ± std over seeds) against the kept share of the
    parameters, one line per method, the dense row dashed; after the
    pruning run and after fine-tuning.

    Args:
        summary (Sequence[Mapping]): Per (method, keep ratio) ``method``,
            ``params`` and ``acc_pruned`` / ``acc_finetuned`` as
            ``(mean, std)``.
        dense_params (float): Parameters of the dense model.
        path (str): Output PNG.

    Returns:
        str: ``path``.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, key, title in ((axes[0], 'acc_pruned', 'after the pruning run'),
                           (axes[1], 'acc_finetuned', 'after fine-tune')):
        for method, color in METHOD_COLORS.items():
            pts = [s for s in summary if s['method'] == method]
            if pts and dense_params:
                ax.errorbar([s['params'] / dense_params for s in pts],
                            [s[key][0] for s in pts], yerr=[s[key][1] for s in pts],
                            fmt='o-', color=color, label=method, capsize=3)
        dense = [s for s in summary if s['method'] == 'dense']
        if dense:
            ax.axhline(dense[0][key][0], color='k', ls='--', label='dense')
        ax.set_xlabel('kept parameters / dense')
        ax.set_title(f'target task, {title}')
        ax.grid(alpha=0.3)
    axes[0].set_ylabel('top-1 (%), mean ± std over seeds')
    axes[1].legend()
    return _save(fig, path)


def plot_paired_differences(comparisons: Sequence[Mapping], path: str) -> str:
    """The paired differences of top-1 with their t intervals over seeds,
    one line per comparison (after the pruning run: grey, after
    fine-tuning: black).

    Args:
        comparisons (Sequence[Mapping]): ``keep_ratio``, ``a``, ``b`` and
            the intervals ``acc_pruned`` / ``acc_finetuned``
            (:func:`mmsparse.utils.stats.paired_seed_interval`).
        path (str): Output PNG.

    Returns:
        str: ``path``.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(comparisons) + 1.5))
    for i, c in enumerate(comparisons):
        for off, key, color in ((-0.15, 'acc_pruned', 'tab:gray'),
                                (0.15, 'acc_finetuned', 'k')):
            r = c[key]
            ax.errorbar(r['diff'], i + off,
                        xerr=[[r['diff'] - r['low']], [r['high'] - r['diff']]],
                        fmt='o', color=color, capsize=3,
                        label=key.replace('acc_', '') if i == 0 else None)
    ax.set_yticks(range(len(comparisons)))
    ax.set_yticklabels([f'keep {c["keep_ratio"]:g}: {c["a"]} − {c["b"]}'
                        for c in comparisons])
    ax.axvline(0, color='k', lw=0.8)
    ax.set_xlabel('paired difference of top-1 (points), 95 % t interval '
                  'over seeds')
    ax.legend()
    return _save(fig, path)
