"""Statistics P3B accumulates between two mask updates.

Per sub-block the summed block benefits (cls and patch rows) and their
count, per gate element the summed Taylor scores
:math:`(m \\odot \\partial L / \\partial m)^2` and their count. All are
float64 tensors on the model's device (no host syncs per iteration);
counts are tensors too, so a skipped (non-finite) step adds 0 without a
branch on the host. They live on the pruner as ``benefit_sum``,
``benefit_count``, ``taylor`` (gate key -> tensor) and ``taylor_count``.
"""
from typing import Dict, List, Optional, Union

import torch


def zero_stats(num_sub_blocks: int, gates: Dict[str, torch.Tensor],
               device) -> dict:
    """Empty statistics for ``num_sub_blocks`` sub-blocks and ``gates``."""
    def zeros(*shape):
        return torch.zeros(*shape, dtype=torch.float64, device=device)
    return dict(benefit_sum=zeros(2, num_sub_blocks), benefit_count=zeros(()),
                taylor={k: zeros(g.numel()) for k, g in gates.items()},
                taylor_count=zeros(()))


def copy_stats(pruner, device: Optional[torch.device] = None) -> dict:
    """A copy of the pruner's statistics, on ``device`` (None = where they
    are)."""
    def copy(t):
        return t.detach().clone() if device is None else \
            t.detach().to(device, copy=True)
    return dict(benefit_sum=copy(pruner.benefit_sum),
                benefit_count=copy(pruner.benefit_count),
                taylor={k: copy(v) for k, v in pruner.taylor.items()},
                taylor_count=copy(pruner.taylor_count))


def load_stats(pruner, stats: dict) -> None:
    """Set the pruner's statistics to (copies of) ``stats`` on its
    device."""
    def load(v):
        return torch.as_tensor(v, dtype=torch.float64).to(
            pruner.device, copy=True)
    pruner.benefit_sum = load(stats['benefit_sum'])
    pruner.benefit_count = load(stats['benefit_count'])
    pruner.taylor = {k: load(v) for k, v in stats['taylor'].items()}
    pruner.taylor_count = load(stats['taylor_count'])


def add_stats(pruner, stats: dict) -> None:
    """Add ``stats`` (e.g. those of the interval before) to the pruner's."""
    pruner.benefit_sum += stats['benefit_sum']
    pruner.benefit_count += stats['benefit_count']
    for k in pruner.taylor:
        pruner.taylor[k] += stats['taylor'][k]
    pruner.taylor_count += stats['taylor_count']


def add_taylor(taylor: Dict[str, torch.Tensor],
               gates: Dict[str, torch.Tensor], keys: List[str],
               grads: torch.Tensor,
               grad_scale: Union[None, float, torch.Tensor]) -> torch.Tensor:
    """Add one step's Taylor scores ``(m * dL/dm) ** 2`` to ``taylor``.

    Args:
        taylor (dict): Summed scores by gate key (updated in place).
        gates (dict): Gate tensors by key; the ``grad`` of those in
            ``keys`` is cleared.
        keys (list[str]): The gates whose gradients ``grads`` holds.
        grads (Tensor): Their gradients, flattened and concatenated (after
            the all-reduce).
        grad_scale (float | Tensor, optional): Loss scale of the backward
            pass (mixed precision); None = 1.

    Returns:
        Tensor: 1 (float64, 0-d) when the gradients were finite, else 0 (and
        nothing was added): the step's count.
    """
    grads = grads.double()
    if grad_scale is not None:
        grads = grads / torch.as_tensor(grad_scale, dtype=torch.float64,
                                        device=grads.device)
    ok = torch.isfinite(grads).all()
    offset = 0
    for k in keys:
        g = gates[k]
        n = g.numel()
        score = (g.detach().double() * grads[offset:offset + n]) ** 2
        taylor[k] += torch.where(ok, score, torch.zeros_like(score))
        offset += n
        g.grad = None
    return ok.double()


def loss_scale(scaler) -> Union[None, float, torch.Tensor]:
    """The current loss scale of a mixed-precision ``scaler`` (a
    ``torch.amp.GradScaler`` or anything with ``get_scale()``), None without
    one: the ``grad_scale`` of :func:`add_taylor`. Read it before the
    optimizer step; a tensor scale is copied, as the scaler updates it in
    place after the step."""
    if scaler is None:
        return None
    scale = getattr(scaler, '_scale', None)
    if isinstance(scale, torch.Tensor):
        return scale.detach().clone()
    get_scale = getattr(scaler, 'get_scale', None)
    return None if get_scale is None else float(get_scale())


__all__ = ['loss_scale', 'zero_stats', 'copy_stats', 'load_stats',
           'add_stats', 'add_taylor']
