"""Global magnitude pruning and masked training, in plain PyTorch.

One threshold over all prunable weights (layer sparsities emerge from the
magnitudes; an optional per-layer density floor keeps the largest weights of
every layer). The quantile is exact and never a full sort: a strided sample
brackets the wanted rank, two comparison passes count and gather the
candidates inside the bracket, and ``torch.kthvalue`` selects among those
(see :func:`kth_smallest`; ``projects/hypersparse/benchmark_quantile.py``
compares it with a sort and with ``torch.kthvalue`` over everything, which is
slow on CUDA, pytorch#75599).
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


#: Below this size :func:`kth_smallest` selects directly.
BRACKET_MIN_NUMEL = 1 << 16
_SAMPLE_SIZE = 1 << 14


def kth_smallest(values: torch.Tensor, k: int,
                 method: str = 'auto') -> torch.Tensor:
    """Exact k-th smallest element (1-based) of a 1-D tensor.

    ``method='kthvalue'``: ``torch.kthvalue`` over everything (a fast
    quickselect on CPU, single-block and slow on CUDA). ``method='bracket'``,
    for large inputs: every ``stride``-th element (``~16k`` samples) gives two
    bracket values ``lo ≤ hi`` around the wanted rank (±4 standard deviations
    of the sample rank, plus a margin); one pass counts ``values < lo``, one
    gathers ``lo ≤ values ≤ hi`` (typically < 1 % of the input) and
    ``torch.kthvalue`` selects in that. When the bracket misses the rank (a
    pathological order), it falls back to ``torch.kthvalue`` on everything.
    The result is the same value either way. ``'auto'`` (default):
    ``kthvalue`` on CPU, ``bracket`` on other devices.

    Args:
        values (Tensor): 1-D tensor.
        k (int): Rank in ``[1, numel]``.
        method (str): 'auto', 'kthvalue' or 'bracket'. Defaults to 'auto'.

    Returns:
        Tensor: 0-dim tensor, the k-th smallest value.
    """
    n = values.numel()
    if not 1 <= k <= n:
        raise ValueError(f'k must be in [1, {n}], got {k}')
    if method not in ('auto', 'kthvalue', 'bracket'):
        raise ValueError("method must be 'auto', 'kthvalue' or 'bracket', "
                         f'got {method!r}')
    if method == 'auto':
        method = 'kthvalue' if values.device.type == 'cpu' else 'bracket'
    if method == 'kthvalue' or n < BRACKET_MIN_NUMEL:
        return torch.kthvalue(values, k).values
    stride = n // _SAMPLE_SIZE
    sample = values[::stride]
    m = sample.numel()
    q = (k - 0.5) / n
    margin = 4.0 * math.sqrt(q * (1 - q) * m) + 8
    lo_rank = max(int(q * m - margin), 1)
    hi_rank = min(int(q * m + margin) + 1, m)
    ends = torch.sort(sample).values[[lo_rank - 1, hi_rank - 1]]
    lo, hi = ends[0], ends[1]
    below = int((values < lo).sum())
    if below < k:
        inside = values[(values >= lo) & (values <= hi)]
        if below + inside.numel() >= k:
            return torch.kthvalue(inside, k - below).values
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


def _protect_layer_floor(flat: torch.Tensor,
                         weights: Mapping[str, torch.Tensor],
                         min_density: float) -> int:
    """Set the largest ``ceil(min_density·numel)`` magnitudes of every layer
    to +inf in ``flat`` (in place); return how many were protected."""
    offset = protected = 0
    for weight in weights.values():
        numel = weight.numel()
        keep = min(math.ceil(min_density * numel), numel)
        if keep > 0:
            part = flat[offset:offset + numel]
            part[torch.topk(part, keep, sorted=False).indices] = math.inf
            protected += keep
        offset += numel
    return protected


def global_magnitude_masks(weights: Mapping[str, torch.Tensor],
                           sparsity: float,
                           min_density: float = 0.0) -> Masks:
    """Keep-masks that zero exactly the ``round(sparsity·n)`` smallest
    magnitudes among all weights (one global threshold).

    Ties at the threshold are broken by position (earlier entries pruned
    first), so the result is deterministic and identical on every rank that
    holds identical weights.

    Args:
        weights (Mapping[str, Tensor]): Name to weight tensor.
        sparsity (float): Fraction to prune, in [0, 1).
        min_density (float): Per-layer floor: every layer keeps at least its
            ``ceil(min_density·numel)`` largest weights; the global sparsity
            stays ``sparsity`` (the other layers give up more). Defaults to
            0 (no floor).

    Returns:
        Dict[str, Tensor]: Name to boolean keep-mask of the weight's shape.
    """
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f'sparsity must be in [0, 1), got {sparsity}')
    flat = flat_magnitudes(weights.values())
    n = flat.numel()
    k = num_pruned(n, sparsity)
    if min_density > 0 and k > 0:
        flat = flat.clone()
        protected = _protect_layer_floor(flat, weights, min_density)
        if protected > n - k:
            raise ValueError(
                f'min_layer_density={min_density} keeps {protected} weights, '
                f'more than the {n - k} that sparsity {sparsity} leaves')
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


def layers_above(masks: Masks, threshold: float) -> Dict[str, float]:
    """Layers whose pruned fraction exceeds ``threshold`` (name to
    sparsity)."""
    _, per_layer = mask_sparsity(masks)
    return OrderedDict(
        (name, value) for name, value in per_layer.items() if value > threshold)


class MaskApplier:
    """Zeroes the pruned entries of weights, gradients and optimizer state
    with one fused multiply per group of tensors.

    Keeps the masks as 0/1 tensors of each weight's dtype and device, built
    once per mask set, and applies them with ``torch._foreach_mul_`` followed
    by ``torch._foreach_add_(…, 0)`` (which turns the ``-0.0`` of pruned
    negative entries into ``+0.0``, as ``masked_fill`` would).

    Args:
        weights (Mapping[str, Tensor]): Name to parameter.
        masks (Dict[str, Tensor]): Name to boolean keep-mask.
    """

    def __init__(self, weights: Mapping[str, torch.Tensor],
                 masks: Masks) -> None:
        self.names = list(weights)
        self.weights = [weights[n] for n in self.names]
        self.factors = [
            masks[n].to(device=w.device, dtype=w.dtype)
            for n, w in zip(self.names, self.weights)
        ]
        self._state_key = None
        self._state_tensors: list = []
        self._state_factors: list = []

    @staticmethod
    def _zero_(tensors, factors) -> None:
        if tensors:
            torch._foreach_mul_(tensors, factors)
            torch._foreach_add_(tensors, 0.0)

    @torch.no_grad()
    def weights_(self) -> None:
        """Mask every weight in place."""
        self._zero_([w.data for w in self.weights], self.factors)

    @torch.no_grad()
    def grads_(self) -> None:
        """Mask every existing ``.grad`` in place."""
        pairs = [(w.grad, f) for w, f in zip(self.weights, self.factors)
                 if w.grad is not None]
        self._zero_([p[0] for p in pairs], [p[1] for p in pairs])

    @torch.no_grad()
    def optimizer_state_(self, optimizers) -> None:
        """Mask every optimizer state tensor of a weight's shape in place
        (the list of tensors is rebuilt only when the state changes)."""
        key = tuple(
            id(value) for opt in optimizers for w in self.weights
            for value in opt.state.get(w, {}).values())
        if key != self._state_key:
            self._state_key = key
            tensors, factors = [], []
            for opt in optimizers:
                for w, f in zip(self.weights, self.factors):
                    for value in opt.state.get(w, {}).values():
                        if torch.is_tensor(value) and value.shape == w.shape:
                            tensors.append(value)
                            factors.append(f.to(value.device, value.dtype))
            self._state_tensors, self._state_factors = tensors, factors
        self._zero_(self._state_tensors, self._state_factors)


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
