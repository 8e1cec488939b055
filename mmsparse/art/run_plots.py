"""The PNG plots of one pruning run (drawn by
:mod:`mmsparse.utils.pruning_plots`, matplotlib with the Agg backend)."""
import os.path as osp
from typing import Dict, Mapping, Optional, Sequence

import torch

from .magnitude import mask_sparsity


class RunPlots:
    """Writes ``<folder>/<prefix>_<name>.png``.

    Args:
        folder (str): Output folder (created on the first plot).
        prefix (str): Start of every file name (e.g. 'art', 'gmp').
    """

    def __init__(self, folder: str, prefix: str) -> None:
        self.folder = folder
        self.prefix = prefix

    def path(self, name: str) -> str:
        """The PNG path of plot ``name``."""
        return osp.join(self.folder, f'{self.prefix}_{name}.png')

    def masks(self,
              tag: str,
              masks: Dict[str, torch.Tensor],
              magnitudes: Optional[torch.Tensor] = None,
              threshold: Optional[float] = None) -> None:
        """Per-layer sparsity of ``masks`` (``layer_sparsity_<tag>``) and,
        with ``magnitudes``, their histogram with the pruning threshold
        (``weight_hist_<tag>``)."""
        from mmsparse.utils.pruning_plots import (plot_layer_sparsity,
                                                  plot_weight_histogram)
        sparsity, per_layer = mask_sparsity(masks)
        plot_layer_sparsity(
            per_layer,
            self.path(f'layer_sparsity_{tag}'),
            title=f'per-layer sparsity ({tag}, global '
            f'{100 * sparsity:.2f}%)')
        if magnitudes is not None:
            plot_weight_histogram(
                magnitudes.cpu().numpy(),
                self.path(f'weight_hist_{tag}'),
                threshold=threshold,
                title=f'|w| at {tag}')

    def art_curves(self,
                   history: Sequence[Mapping],
                   metric: str,
                   unit: str,
                   switch: Optional[int] = None,
                   val_history: Optional[Sequence[Mapping]] = None) -> None:
        """λ and the dense / pruned scores over ART steps (``curves``), with
        the validation metric (``val_history``: dicts with ``unit`` and
        ``value``) when given; nothing without ART steps."""
        if not history:
            return
        from mmsparse.utils.pruning_plots import plot_art_curves
        val = None if val_history is None else [
            dict(unit=v['unit'], value=v['value']) for v in val_history
        ]
        plot_art_curves(history, self.path('curves'), metric=metric,
                        unit=unit, switch=switch, val_history=val)
