"""Compressed snapshots of ART's magnitude-pruned models (rollback).

After every ART step the pruned copy of the model is kept as a compact CPU
snapshot; the window's best one is what fine-tuning starts from
(``rollback_to_best``).
"""
from collections import OrderedDict, deque
from typing import Dict, Mapping, Optional, Tuple

import torch

from mmsparse.utils.sparse_checkpoint import (densify_state_dict,
                                              sparsify_state_dict)
from .state_io import pack_masks, unpack_masks


@torch.no_grad()
def pruned_snapshot(state_dict: Mapping[str, torch.Tensor], step: int,
                    masks: Dict[str, torch.Tensor]) -> dict:
    """Compressed CPU copy of a model state, magnitude-pruned with
    ``masks``: tensors in the smallest sparse encoding of
    :mod:`mmsparse.utils.sparse_checkpoint` (bit-exact), masks as packed
    bits. At sparsity κ the prunable weights take ~(1 − κ) of their dense
    size, so the window's snapshots in every ART-phase checkpoint add little
    to the model's size.

    Args:
        state_dict (Mapping[str, Tensor]): The model's ``state_dict()``.
        step (int): The ART step.
        masks (Dict[str, Tensor]): Keep-masks, keyed like the state dict.

    Returns:
        dict: ``step``, ``state_dict`` (sparse) and ``masks`` (packed).
    """
    state = OrderedDict()
    for key, value in state_dict.items():
        value = value.detach()
        if key in masks:
            value = value * masks[key].to(value.device)
            value += 0  # -0.0 -> +0.0, as masked_fill
        else:
            value = value.clone()
        state[key] = value
    return dict(
        step=step,
        state_dict=sparsify_state_dict(state),
        masks=pack_masks(masks))


def restore_snapshot(snapshot: dict
                     ) -> Tuple[dict, 'OrderedDict[str, torch.Tensor]']:
    """The dense state dict and the boolean masks of a snapshot."""
    return (densify_state_dict(snapshot['state_dict']),
            unpack_masks(snapshot['masks']))


class SnapshotWindow:
    """The snapshots a window of ``2·buffer + 1`` steps can still roll back
    to (the last ``buffer + 1``: the middle and the newer ones) and the best
    one chosen so far.

    Args:
        buffer (int): Half width of the sliding window.
    """

    def __init__(self, buffer: int) -> None:
        self.snapshots: deque = deque(maxlen=buffer + 1)
        self.best: Optional[dict] = None

    def add(self, snapshot: dict, best_step: Optional[int] = None) -> None:
        """Keep a snapshot; ``best_step`` (when the window's best entry
        changed) makes the kept snapshot of that step the best one."""
        self.snapshots.append(snapshot)
        if best_step is not None:
            self.best = next(
                s for s in self.snapshots if s['step'] == best_step)

    def clear(self) -> None:
        """Drop all snapshots (after the switch to fine-tuning)."""
        self.snapshots.clear()
        self.best = None

    def state_dict(self) -> dict:
        """``snapshots``, ``best_step`` and ``best_snapshot``."""
        return dict(
            snapshots=list(self.snapshots),
            best_step=None if self.best is None else self.best['step'],
            best_snapshot=self.best)

    def load_state_dict(self, state: dict) -> None:
        """Restore from :meth:`state_dict` (a checkpoint's ART state)."""
        self.snapshots.clear()
        self.snapshots.extend(state['snapshots'])
        self.best = state['best_snapshot']
