"""Guards against collapsed layers under one global magnitude threshold.

A per-layer density floor (every layer keeps its largest weights) and a
warning that names every layer pruned above a threshold.
"""
import math
from typing import Dict, Mapping, Optional, Sequence

import torch

from .arguments import prefixed
from .magnitude import global_magnitude_masks, layers_above, num_pruned


class LayerDensityGuard:
    """Per-layer density floor and collapse warning of the global masks.

    Args:
        min_layer_density (float): Every layer keeps at least this fraction
            of its weights (the largest ones), in [0, 1). Defaults to 0.
        warn_layer_sparsity (float, optional): :meth:`collapse_warning`
            names every layer pruned above this fraction, in (0, 1]; None
            never warns. Defaults to 0.99.
        owner (str, optional): Prefix of run-time error messages.
            Defaults to None.
    """

    def __init__(self,
                 min_layer_density: float = 0.0,
                 warn_layer_sparsity: Optional[float] = 0.99,
                 owner: Optional[str] = None) -> None:
        if not (isinstance(min_layer_density, (int, float))
                and 0.0 <= min_layer_density < 1.0):
            raise ValueError('min_layer_density must be in [0, 1), got '
                             f'{min_layer_density!r}')
        if warn_layer_sparsity is not None and not (
                isinstance(warn_layer_sparsity, (int, float))
                and 0.0 < warn_layer_sparsity <= 1.0):
            raise ValueError('warn_layer_sparsity must be in (0, 1] or None, '
                             f'got {warn_layer_sparsity!r}')
        self.min_layer_density = float(min_layer_density)
        self.warn_layer_sparsity = warn_layer_sparsity
        self.owner = owner

    def check_floor(self, numels: Sequence[int],
                    sparsity: Optional[float]) -> None:
        """The floor must leave room for ``sparsity`` over layers of these
        sizes (nothing to check without a floor or a sparsity)."""
        if not self.min_layer_density or sparsity is None:
            return
        floor = sum(
            min(math.ceil(self.min_layer_density * n), n) for n in numels)
        left = sum(numels) - num_pruned(sum(numels), sparsity)
        if floor > left:
            raise ValueError(prefixed(
                self.owner,
                f'min_layer_density={self.min_layer_density} keeps {floor} '
                f'weights, more than the {left} that target_sparsity '
                f'{sparsity} leaves'))

    def masks(self, weights: Mapping[str, torch.Tensor],
              sparsity: float) -> Dict[str, torch.Tensor]:
        """Global magnitude keep-masks of ``sparsity`` with the floor."""
        try:
            return global_magnitude_masks(weights, sparsity,
                                          self.min_layer_density)
        except ValueError as err:
            raise ValueError(prefixed(self.owner, str(err))) from err

    def collapse_warning(self, masks: Dict[str, torch.Tensor]
                         ) -> Optional[str]:
        """A message naming every layer pruned above
        ``warn_layer_sparsity``, or None."""
        if self.warn_layer_sparsity is None:
            return None
        above = layers_above(masks, self.warn_layer_sparsity)
        if not above:
            return None
        listed = ', '.join(f'{n} ({100 * v:.2f}%)' for n, v in above.items())
        return (f'{len(above)} layer(s) pruned above '
                f'{100 * self.warn_layer_sparsity:g}%: {listed}. Exclude them '
                '(exclude=[...]) or set min_layer_density.')
