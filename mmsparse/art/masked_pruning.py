"""The mask side of a magnitude pruning run, in plain PyTorch.

:class:`MaskedPruning` is what ART and the magnitude baselines (one-shot,
GMP) share: the prunable weights, their global magnitude masks with
:class:`~mmsparse.art.layer_guard.LayerDensityGuard`'s per-layer floor and
collapse warning, training under the masks
(:class:`~mmsparse.art.masked_training.MaskedTraining`), the switch to
fine-tuning and the learning-rate decay after it
(:class:`~mmsparse.art.finetune_lr.FinetuneLRDecay`). A training framework
gives a cross-rank ``sync`` (e.g. a broadcast from rank 0), sets
:attr:`MaskedPruning.weights`, passes its optimizers, and calls
:meth:`enforce` after every optimizer step.
"""
import copy
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple

import torch

from .finetune_lr import FinetuneLRDecay
from .layer_guard import LayerDensityGuard
from .magnitude import flat_magnitudes, magnitude_threshold
from .masked_training import MaskedTraining

Masks = Dict[str, torch.Tensor]
Optimizers = Sequence[torch.optim.Optimizer]
Sync = Optional[Callable[[torch.Tensor], None]]


class MaskedPruning:
    """Global magnitude masks of the prunable weights over one run.

    Args:
        finetune_lr_milestones (Sequence[int]): Units after the switch at
            which the learning rate is multiplied by ``finetune_lr_gamma``.
            Defaults to () (the learning rate is left alone).
        finetune_lr_gamma (float): Decay factor in (0, 1]. Defaults to 0.1.
        min_layer_density (float): Per-layer floor in [0, 1).
            Defaults to 0.
        warn_layer_sparsity (float, optional): Layers pruned above this
            fraction are named at the switch. Defaults to 0.99.
        owner (str, optional): Prefix of run-time error messages.
            Defaults to None.
        sync (Callable, optional): Applied in place to every mask before it
            is installed, so that all ranks hold the same (e.g. a broadcast
            from rank 0). Defaults to None.
    """

    def __init__(self,
                 finetune_lr_milestones: Sequence[int] = (),
                 finetune_lr_gamma: float = 0.1,
                 min_layer_density: float = 0.0,
                 warn_layer_sparsity: Optional[float] = 0.99,
                 owner: Optional[str] = None,
                 sync: Sync = None) -> None:
        self.finetune_lr = FinetuneLRDecay(finetune_lr_milestones,
                                           finetune_lr_gamma)
        self.guard = LayerDensityGuard(min_layer_density, warn_layer_sparsity,
                                       owner)
        self.masking = MaskedTraining(owner)
        self.sync = sync
        #: Name to prunable weight (set by the training framework).
        self.weights: Optional[Mapping[str, torch.nn.Parameter]] = None
        #: Completed units at the switch to fine-tuning (None before).
        self.switch_unit: Optional[int] = None

    @property
    def masks(self) -> Optional[Masks]:
        """Boolean keep-masks of the prunable weights (None: dense)."""
        return self.masking.masks

    @property
    def sparsity(self) -> float:
        """Sparsity of the current masks (0 without masks)."""
        return self.masking.sparsity

    @property
    def device(self) -> Optional[torch.device]:
        """Device of the first weight (None before :attr:`weights` is set or
        without weights)."""
        first = next(iter(self.weights.values()), None) \
            if self.weights else None
        return getattr(first, 'device', None)

    # ----------------------------------------------------------- checks
    def check_schedulers(self, scheduled: bool) -> None:
        """With milestones the decay sets the learning rate itself: the run
        must not have its own schedulers (``scheduled``)."""
        if self.finetune_lr.milestones and scheduled:
            raise ValueError('finetune_lr_milestones sets the learning rate '
                             'itself; remove param_scheduler from the config '
                             'or set finetune_lr_milestones=()')

    def check_floor(self, sparsity: Optional[float]) -> None:
        """The per-layer floor must leave room for ``sparsity``."""
        self.guard.check_floor([w.numel() for w in self.weights.values()],
                               sparsity)

    # ------------------------------------------------------------ masks
    def global_masks(self, sparsity: float) -> Masks:
        """Global magnitude keep-masks of ``sparsity`` with the floor."""
        return self.guard.masks(self.weights, sparsity)

    def shrunk_masks(self, sparsity: float) -> Masks:
        """:meth:`global_masks` without regrowth: a weight pruned by the
        current masks stays pruned."""
        masks = self.global_masks(sparsity)
        if self.masks is None:
            return masks
        return {n: m & self.masks[n].to(m.device) for n, m in masks.items()}

    def magnitudes(self) -> torch.Tensor:
        """All ``|w|`` of the prunable weights, flat."""
        return flat_magnitudes(self.weights.values())

    def magnitudes_and_threshold(self, sparsity: float
                                 ) -> Tuple[torch.Tensor, float]:
        """:meth:`magnitudes` and the largest magnitude a global mask of
        ``sparsity`` prunes (what the histogram plot shows)."""
        return self.magnitudes(), magnitude_threshold(self.weights, sparsity)

    def bind(self, optimizers: Optimizers) -> None:
        """Register the gradient masks on :attr:`weights` and apply masks
        that are already there (from a checkpoint), keeping the optimizer
        state."""
        self.masking.bind(self.weights)
        if self.masks is not None:
            self.install(self.masks, optimizers, False)

    def install(self, masks: Masks, optimizers: Optimizers,
                reset: bool) -> None:
        """Install masks through :attr:`sync` (see
        :meth:`~mmsparse.art.masked_training.MaskedTraining.install`)."""
        self.masking.install(masks, optimizers, reset, sync=self.sync)

    def enforce(self, optimizers: Optimizers) -> None:
        """Zero the pruned entries after an optimizer step (nothing while
        dense)."""
        if self.masks is not None:
            self.masking.enforce(optimizers)

    def remove_hooks(self) -> None:
        """Remove the gradient masks."""
        self.masking.remove_hooks()

    # --------------------------------------------------------- fine-tune
    def switch_to_finetune(self, completed: int, masks: Masks,
                           optimizers: Optimizers,
                           reset: bool) -> Optional[str]:
        """Fix the final masks after ``completed`` units and record the
        learning rates the decay starts from.

        Returns:
            str or None: The warning that names every layer pruned above
            ``warn_layer_sparsity``, or None.
        """
        self.switch_unit = completed
        self.install(masks, optimizers, reset)
        self.finetune_lr.record(optimizers)
        return self.guard.collapse_warning(self.masks)

    def apply_finetune_lr(self, optimizers: Optimizers, unit: int) -> None:
        """Set the learning rate of the unit with 0-based index ``unit``
        (nothing before the switch)."""
        if self.switch_unit is not None:
            self.finetune_lr.apply(optimizers, unit - self.switch_unit)

    def summary(self) -> Optional[str]:
        """``'final sparsity ...% of N prunable weights'`` (None while
        dense)."""
        if self.masks is None:
            return None
        total = sum(m.numel() for m in self.masks.values())
        return (f'final sparsity {100 * self.sparsity:.2f}% of {total} '
                'prunable weights')

    # ------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """``masks`` (CPU copies or None), ``switch_unit``, ``base_lrs``."""
        return dict(
            masks=self.masking.state_dict(),
            switch_unit=self.switch_unit,
            base_lrs=copy.deepcopy(self.finetune_lr.base_lrs))

    def load_state_dict(self, state: dict) -> None:
        """Restore from :meth:`state_dict` (masks are applied by
        :meth:`bind`)."""
        self.masking.load(state['masks'])
        self.switch_unit = state['switch_unit']
        self.finetune_lr.base_lrs = state['base_lrs']
