"""Update records of a P3B run: what each mask update decided.

Every mask update appends one record (a dict of plain floats and lists) to
``P3BPruner.history``; the records are saved in checkpoints, written to
``history.json`` and plotted by :mod:`mmsparse.utils.p3b_plots`.

Record keys: ``step`` (0-based iteration), ``tau`` (soft-mask temperature),
``global_keep`` (kept / dense parameters of the model), per sub-block
(attention, MLP, attention, ...) ``target_keep`` (this update's ramped keep
ratio), ``goal_keep`` (the solved goal), ``block_keep`` (kept by the new
masks), ``kept_params``, ``importance``, ``benefit_cls`` /
``benefit_patch`` (mean block benefit since the last update, None without
probes) and ``finalized``.
"""
import json
from typing import List, Optional, Sequence

import torch


def _floats(values) -> List[float]:
    return [float(v) for v in values]


def update_record(step: int, tau: float, global_keep: float,
                  target_keep: Sequence, goal_keep: Sequence,
                  kept_params: torch.Tensor, dense_params: torch.Tensor,
                  importance: Sequence, benefit: Optional[torch.Tensor],
                  finalized: bool) -> dict:
    """The record of one mask update (see the module doc).

    Args:
        step (int): The iteration of the update.
        tau (float): Soft-mask temperature.
        global_keep (float): Kept / dense parameters of the model.
        target_keep (Sequence): Keep ratio per sub-block of this update.
        goal_keep (Sequence): Goal keep ratio per sub-block.
        kept_params (Tensor): Parameters each sub-block keeps.
        dense_params (Tensor): Dense parameters of each sub-block.
        importance (Sequence): Block importance of the solve.
        benefit (Tensor, optional): (2, S) mean cls and patch benefit; None
            without probes.
        finalized (bool): The finalize update (hard masks).
    """
    return dict(
        step=int(step),
        tau=float(tau),
        global_keep=global_keep,
        target_keep=_floats(target_keep),
        goal_keep=_floats(goal_keep),
        block_keep=_floats(kept_params / dense_params),
        kept_params=_floats(kept_params),
        importance=_floats(importance),
        benefit_cls=None if benefit is None else _floats(benefit[0]),
        benefit_patch=None if benefit is None else _floats(benefit[1]),
        finalized=bool(finalized))


def format_update(record: dict, keep_ratio: float) -> str:
    """A log table of one update record: per sub-block the goal, target
    and kept keep ratio, the importance and the two benefits."""
    lines = [
        f'P3B update at iter {record["step"] + 1}: global keep ratio '
        f'{record["global_keep"]:.4f} (goal {keep_ratio}), tau '
        f'{record["tau"]:.4f}', 'sub-block  goal   target kept   '
        'importance benefit_cls benefit_patch'
    ]
    nan = float('nan')
    for j, kept in enumerate(record['block_keep']):
        name = f'{j // 2:2d}.{"attn" if j % 2 == 0 else "mlp "}'
        cls = record['benefit_cls'][j] if record['benefit_cls'] else nan
        pat = record['benefit_patch'][j] if record['benefit_patch'] else nan
        lines.append(
            f'{name}    {record["goal_keep"][j]:.3f}  '
            f'{record["target_keep"][j]:.3f}  {kept:.3f}  '
            f'{record["importance"][j]:10.4f} {cls:+11.4f} {pat:+13.4f}')
    return '\n'.join(lines)


def save_history(path: str, history: Sequence[dict], iters_per_epoch: int,
                 dense_params: torch.Tensor,
                 non_block_params: float) -> None:
    """Write ``history.json``: the update records with the dense parameters
    per sub-block, the non-block parameters counted in the budget and the
    iterations per epoch (1 for iteration-based runs)."""
    with open(path, 'w') as f:
        json.dump(dict(iters_per_epoch=iters_per_epoch,
                       dense_params=dense_params.tolist(),
                       non_block_params=non_block_params,
                       history=list(history)), f)


__all__ = ['update_record', 'format_update', 'save_history']


def benefit_timeline(histories: Sequence[dict]) -> Optional[dict]:
    """Block benefit of several runs over training (e.g. one run per seed),
    and the epoch each sub-block reaches half of its gain.

    The benefit of a sub-block at an update is the mean of its ``cls`` and
    ``patch`` benefit; the runs are averaged update by update (over the
    updates all of them have).

    Args:
        histories (Sequence[dict]): ``history.json`` of each run
            (``iters_per_epoch`` and the update records).

    Returns:
        dict | None: ``epochs`` (T), ``mean`` (T x S benefit), ``early`` /
        ``final`` (the mean over the first / last eighth of the updates),
        ``half_gain_epoch`` (per sub-block the first epoch whose benefit
        gained half of ``final - early``; None without a gain) and
        ``seeds`` (the runs); None without runs that logged benefit.
    """
    import numpy as np
    curves = []
    for hist in histories:
        recs = [h for h in hist['history'] if h['benefit_cls']]
        curves.append(([(h['step'] + 1) / hist['iters_per_epoch'] for h in recs],
                       np.array([[0.5 * (c + p) for c, p in
                                  zip(h['benefit_cls'], h['benefit_patch'])]
                                 for h in recs])))
    if not curves:
        return None
    num = min(len(e) for e, _ in curves)
    epochs = curves[0][0][:num]
    mean = np.mean([b[:num] for _, b in curves], axis=0)  # (T, S)
    final = mean[-max(1, num // 8):].mean(0)
    early = mean[:max(1, num // 8)].mean(0)
    half = []
    for j in range(mean.shape[1]):
        gain = final[j] - early[j]
        hit = np.flatnonzero(mean[:, j] - early[j] >= 0.5 * gain)
        half.append(float(epochs[hit[0]]) if gain > 0 else None)
    return dict(epochs=[float(e) for e in epochs], mean=mean.tolist(),
                early=early.tolist(), final=final.tolist(),
                half_gain_epoch=half, seeds=len(curves))
