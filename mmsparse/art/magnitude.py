"""Global magnitude pruning and masked training, in plain PyTorch.

One threshold over all prunable weights (layer sparsities emerge from the
magnitudes). The quantile is taken with ``torch.kthvalue`` (selection, O(n)),
not with a full sort: on this project's CPU benchmark (see
``projects/hypersparse/benchmark_quantile.py``) a sort of 1.9M magnitudes takes
~10x longer than the selection, which returns the identical value.
"""
import math
from collections import OrderedDict
from typing import Dict, Iterable, Mapping, Optional, Tuple

import torch

Masks = Dict[str, torch.Tensor]


def check_sparsity(sparsity: float, name: str = 'target_sparsity') -> float:
    """Validate a sparsity in the open interval (0, 1).

    Args:
        sparsity (float): Fraction of pruned weights.
        name (str): Name of the argument in error messages.
            Defaults to 'target_sparsity'.

    Returns:
        float: The sparsity.
    """
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)):
        raise TypeError(f'{name} must be a float in (0, 1), got '
                        f'{type(sparsity).__name__}')
    if not 0.0 < float(sparsity) < 1.0:
        raise ValueError(f'{name} must be in the open interval (0, 1), got '
                         f'{sparsity}')
    return float(sparsity)


def flat_magnitudes(weights: Iterable[torch.Tensor]) -> torch.Tensor:
    """Concatenate ``|w|`` of all tensors (detached, float32 or wider)."""
    mags = [w.detach().abs().flatten() for w in weights]
    if not mags:
        raise ValueError('no prunable weights')
    flat = torch.cat(mags)
    if flat.dtype in (torch.float16, torch.bfloat16):
        flat = flat.float()
    return flat


def kth_smallest(values: torch.Tensor, k: int) -> torch.Tensor:
    """Exact k-th smallest element (1-based) of a 1-D tensor by selection.

    Args:
        values (Tensor): 1-D tensor.
        k (int): Rank in ``[1, numel]``.

    Returns:
        Tensor: 0-dim tensor, the k-th smallest value.
    """
    n = values.numel()
    if not 1 <= k <= n:
        raise ValueError(f'k must be in [1, {n}], got {k}')
    return torch.kthvalue(values, k).values


def magnitude_quantile(flat_abs: torch.Tensor, kappa: float) -> torch.Tensor:
    """The κ-quantile of the magnitudes as HyperSparse defines it.

    It is the element at 0-based position ``floor(κ·n)`` of the sorted
    magnitudes (clamped to the last one), found without sorting.

    Args:
        flat_abs (Tensor): 1-D tensor of magnitudes.
        kappa (float): Quantile in (0, 1).

    Returns:
        Tensor: 0-dim tensor.
    """
    n = flat_abs.numel()
    k = min(math.floor(kappa * n) + 1, n)
    return kth_smallest(flat_abs, k)


def num_pruned(numel: int, sparsity: float) -> int:
    """Number of weights a global mask of ``sparsity`` prunes."""
    return min(max(int(round(sparsity * numel)), 0), numel)


def global_magnitude_masks(weights: Mapping[str, torch.Tensor],
                           sparsity: float) -> Masks:
    """Keep-masks that zero exactly the ``round(sparsity·n)`` smallest
    magnitudes among all weights (one global threshold).

    Ties at the threshold are broken by position (earlier entries pruned
    first), so the result is deterministic and identical on every rank that
    holds identical weights.

    Args:
        weights (Mapping[str, Tensor]): Name to weight tensor.
        sparsity (float): Fraction to prune, in [0, 1).

    Returns:
        Dict[str, Tensor]: Name to boolean keep-mask of the weight's shape.
    """
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f'sparsity must be in [0, 1), got {sparsity}')
    flat = flat_magnitudes(weights.values())
    n = flat.numel()
    k = num_pruned(n, sparsity)
    if k == 0:
        keep = torch.ones_like(flat, dtype=torch.bool)
    else:
        threshold = kth_smallest(flat, k)
        keep = flat > threshold
        surplus = int(n - keep.sum()) - k
        if surplus > 0:  # ties at the threshold: keep the last ones
            ties = torch.nonzero(flat == threshold).flatten()
            keep[ties[ties.numel() - surplus:]] = True
    masks: Masks = OrderedDict()
    offset = 0
    for name, weight in weights.items():
        numel = weight.numel()
        masks[name] = keep[offset:offset + numel].view_as(weight).clone()
        offset += numel
    return masks


def magnitude_threshold(weights: Mapping[str, torch.Tensor],
                        sparsity: float) -> float:
    """The largest pruned magnitude of a global mask of ``sparsity``."""
    flat = flat_magnitudes(weights.values())
    k = num_pruned(flat.numel(), sparsity)
    return float(kth_smallest(flat, k)) if k > 0 else 0.0


@torch.no_grad()
def apply_masks_(weights: Mapping[str, torch.Tensor], masks: Masks) -> None:
    """Zero the pruned entries of every weight in place."""
    for name, weight in weights.items():
        mask = masks[name]
        if mask.device != weight.device:
            mask = mask.to(weight.device)
            masks[name] = mask
        weight.masked_fill_(~mask, 0)


@torch.no_grad()
def mask_optimizer_state_(optimizer: torch.optim.Optimizer,
                          weights: Mapping[str, torch.Tensor],
                          masks: Masks) -> None:
    """Zero the optimizer state of pruned entries in place.

    Every state tensor that has the shape of its parameter (SGD's momentum
    buffer, Adam's ``exp_avg``/``exp_avg_sq``, ...) is masked, so that neither
    momentum nor adaptive statistics can move a pruned weight again.

    Args:
        optimizer (torch.optim.Optimizer): The optimizer.
        weights (Mapping[str, Tensor]): Name to parameter.
        masks (Dict[str, Tensor]): Name to boolean keep-mask.
    """
    for name, weight in weights.items():
        state = optimizer.state.get(weight)
        if not state:
            continue
        mask = masks[name]
        for value in state.values():
            if torch.is_tensor(value) and value.shape == weight.shape:
                value.masked_fill_(~mask.to(value.device), 0)


def mask_sparsity(masks: Masks) -> Tuple[float, Dict[str, float]]:
    """Global and per-layer sparsity (fraction of pruned entries) of masks."""
    total = sum(m.numel() for m in masks.values())
    pruned = sum(int((~m).sum()) for m in masks.values())
    per_layer = OrderedDict(
        (name, float((~m).sum()) / max(m.numel(), 1))
        for name, m in masks.items())
    return pruned / max(total, 1), per_layer


def weight_sparsity(
        weights: Mapping[str, torch.Tensor]
) -> Tuple[float, Dict[str, Tuple[int, int]]]:
    """Global sparsity (fraction of exact zeros) and per-layer
    ``(zeros, numel)`` of weight tensors."""
    per_layer = OrderedDict()
    zeros = total = 0
    for name, weight in weights.items():
        z = int((weight.detach() == 0).sum())
        per_layer[name] = (z, weight.numel())
        zeros += z
        total += weight.numel()
    return zeros / max(total, 1), per_layer


def masks_equal(a: Optional[Masks], b: Optional[Masks]) -> bool:
    """Whether two mask dicts have the same keys and identical entries."""
    if a is None or b is None:
        return a is b
    return a.keys() == b.keys() and all(
        torch.equal(a[k].cpu(), b[k].cpu()) for k in a)
