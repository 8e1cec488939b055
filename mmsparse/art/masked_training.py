"""Training under fixed keep-masks, in plain PyTorch.

:class:`MaskedTraining` holds the boolean keep-masks of the prunable weights
and keeps the pruned entries at zero: gradients are masked in backward (a
tensor hook, before accumulation and before DDP's all-reduce), weights and
optimizer state after every step (no regrowth).
"""
from collections import OrderedDict
from typing import Callable, Dict, Mapping, Optional, Sequence

import torch

from .arguments import prefixed
from .magnitude import MaskApplier, mask_sparsity

Masks = Dict[str, torch.Tensor]


class MaskedTraining:
    """Keep-masks of the prunable weights and their enforcement.

    Usage: :meth:`bind` the weights (and register the gradient hooks), then
    :meth:`install` masks; call :meth:`enforce` after every optimizer step.
    Before :meth:`bind`, :meth:`load` may set masks from a checkpoint.

    Args:
        owner (str, optional): Prefix of error messages. Defaults to None.
    """

    def __init__(self, owner: Optional[str] = None) -> None:
        self.owner = owner
        self.weights: Optional[Mapping[str, torch.nn.Parameter]] = None
        self.masks: Optional[Masks] = None
        self._applier: Optional[MaskApplier] = None
        self._sparsity: Optional[float] = None
        self._handles: list = []

    @property
    def sparsity(self) -> float:
        """Sparsity of the current masks (0 without masks; computed once per
        mask set, no per-iteration host syncs)."""
        if self.masks is None:
            return 0.0
        if self._sparsity is None:
            self._sparsity = mask_sparsity(self.masks)[0]
        return self._sparsity

    def bind(self, weights: Mapping[str, torch.nn.Parameter]) -> None:
        """Use these weights and (re-)register the gradient masks on the
        trainable ones."""
        self.weights = weights
        self.remove_hooks()
        for index, weight in enumerate(weights.values()):
            if weight.requires_grad:
                self._handles.append(
                    weight.register_hook(self._grad_mask_fn(index)))

    def remove_hooks(self) -> None:
        """Remove the gradient hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _grad_mask_fn(self, index: int):

        def mask_grad(grad: torch.Tensor) -> torch.Tensor:
            # runs before accumulation and before DDP's all-reduce
            if self._applier is None:
                return grad
            return grad * self._applier.factors[index]

        return mask_grad

    def load(self, masks: Optional[Masks]) -> None:
        """Set masks as they are (e.g. from a checkpoint; :meth:`install`
        applies them)."""
        self.masks = masks
        self._applier = None
        self._sparsity = None

    def install(self,
                masks: Masks,
                optimizers: Sequence[torch.optim.Optimizer],
                reset: bool,
                sync: Optional[Callable[[torch.Tensor], None]] = None
                ) -> None:
        """Install masks: as uint8 on each weight's device, passed through
        ``sync`` (e.g. a broadcast from rank 0, in place) so that every rank
        holds the same, then applied to weights and optimizer state;
        ``reset`` clears the optimizer state first. The masks must cover
        exactly the bound weights."""
        if set(masks) != set(self.weights):
            raise ValueError(prefixed(
                self.owner,
                'the masks do not match the prunable weights of the model '
                f'(missing {sorted(set(self.weights) - set(masks))[:5]}, '
                f'unexpected {sorted(set(masks) - set(self.weights))[:5]})'))
        synced = OrderedDict()
        for name, weight in self.weights.items():
            mask = masks[name].to(device=weight.device, dtype=torch.uint8)
            if mask.shape != weight.shape:
                raise ValueError(f'mask of {name} has shape '
                                 f'{tuple(mask.shape)}, the weight '
                                 f'{tuple(weight.shape)}')
            if sync is not None:
                sync(mask)
            synced[name] = mask.bool()
        self.load(synced)
        if reset:
            for optimizer in optimizers:
                optimizer.state.clear()
        self.enforce(optimizers)

    @torch.no_grad()
    def enforce(self, optimizers: Sequence[torch.optim.Optimizer]) -> None:
        """Zero the pruned entries of the weights and optimizer state."""
        if self._applier is None:
            self._applier = MaskApplier(self.weights, self.masks)
        self._applier.weights_()
        self._applier.optimizer_state_(optimizers)

    def state_dict(self) -> Optional['OrderedDict[str, torch.Tensor]']:
        """CPU copies of the masks (None without masks)."""
        if self.masks is None:
            return None
        return OrderedDict(
            (k, v.detach().cpu().clone()) for k, v in self.masks.items())
