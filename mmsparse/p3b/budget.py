"""Inter-block budget of P3B: block benefit transform, keep-ratio solve,
ramp and temperature schedules.

Glandorf & Rosenhahn, "Pruning by Block Benefit: Exploring the Properties of
Vision Transformer Blocks during Domain Adaptation", ICCV 2025 workshops,
https://arxiv.org/abs/2506.23675.

Plain PyTorch; every function is pure (tensors in, tensors out).
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

#: ln(9): a soft mask is 0.9 one temperature-width above the threshold.
LOG9 = math.log(9.0)


def transform_benefit(benefit: torch.Tensor,
                      kept_params: torch.Tensor,
                      scale: float = 10.0,
                      prev: Optional[torch.Tensor] = None,
                      momentum: float = 0.2) -> torch.Tensor:
    r"""Turn mean block benefits into relative block importances.

    For one token type (cls or patch), with :math:`\Delta\Psi_i` the mean
    benefit of block :math:`i` since the last budget update:

    .. math::
        a &= s \cdot \Delta\Psi / \max(\Delta\Psi) \\
        a &= \mathrm{softplus}(1.4 a) - \mathrm{softplus}(1.4 a - s) \\
        a &= a / (P^{kept} + 10^{-6}), \quad a = a / \mathrm{mean}(a) \\
        a &= \gamma a + (1 - \gamma) a_{prev}

    The smooth clamp keeps ``a`` in (0, s); dividing by the block's kept
    parameters favours blocks that are already small, which is what lets
    pruned blocks grow back ("reactivation").

    Args:
        benefit (Tensor): Mean benefit per block, shape (B, ).
        kept_params (Tensor): Parameters each block keeps under the current
            hard masks, shape (B, ).
        scale (float): ``s``, the upper end of the smooth clamp.
            Defaults to 10.
        prev (Tensor, optional): The previous (smoothed) importance; None at
            the first update. Defaults to None.
        momentum (float): ``gamma``, weight of the new value in the EMA.
            Defaults to 0.2.

    Returns:
        Tensor: Importance per block (float64), mean 1 before the EMA.
    """
    a = benefit.detach().double()
    kept = kept_params.detach().double()
    peak = a.max()
    # Guard (not in the reference): if no block helps at all, every block is
    # treated alike instead of dividing by a non-positive maximum.
    a = scale * a / peak if peak > 0 else torch.zeros_like(a)
    a = F.softplus(1.4 * a) - F.softplus(1.4 * a - scale)
    a = a / (kept + 1e-6)
    a = a / a.mean()
    if prev is not None:
        a = momentum * a + (1.0 - momentum) * prev.double()
    return a


def solve_keep_ratios(importance: torch.Tensor,
                      block_params: torch.Tensor,
                      keep_ratio: float,
                      non_block_params: float = 0.0) -> torch.Tensor:
    r"""Block keep ratios proportional to importance that meet a budget.

    Finds :math:`\sigma` with :math:`kr_i = \sigma \cdot imp_i` and

    .. math:: \sum_i kr_i W_i = kr \cdot (\sum_i W_i + W_{nb}) - W_{nb}

    Blocks whose ratio reaches 1 are fixed dense, blocks with importance
    <= 0 are switched off, and :math:`\sigma` is re-solved for the others
    until no ratio leaves [0, 1]. Every round fixes at least one more block,
    so the loop ends after at most ``len(importance)`` rounds (the
    reference caps it at 20 for 24 blocks).

    Args:
        importance (Tensor): Non-negative importance per block, shape (B, ).
        block_params (Tensor): Dense parameter count per block, shape (B, ).
        keep_ratio (float): Fraction of parameters the model keeps, in
            (0, 1].
        non_block_params (float): Parameters outside the blocks (patch
            embedding, tokens, final norm, head); they stay dense and count
            toward the budget. Defaults to 0.

    Returns:
        Tensor: Keep ratio per block in [0, 1] (float64).
    """
    imp = importance.detach().double().clone()
    weights = block_params.detach().double()
    target = keep_ratio * (weights.sum() + non_block_params) - non_block_params
    if target < 0:
        raise ValueError(
            f'keep_ratio={keep_ratio} is below the share of parameters '
            f'outside the blocks ({non_block_params:.0f} of '
            f'{float(weights.sum() + non_block_params):.0f}); raise '
            'keep_ratio or set count_non_block=False')
    dense = torch.zeros_like(imp, dtype=torch.bool)
    off = imp <= 0
    kr = imp.clone()
    for _ in range(len(imp) + 1):
        free = ~(dense | off)
        if not free.any():
            break
        budget = target - weights[dense].sum()
        kr[free] = imp[free] * budget / (imp[free] * weights[free]).sum()
        new_dense = free & (kr >= 1)
        new_off = free & (kr <= 0)
        if not (new_dense.any() or new_off.any()):
            break
        dense |= new_dense
        off |= new_off
    kr[dense] = 1.0
    kr[off] = 0.0
    return kr.clamp(0.0, 1.0)


def ramp_keep_ratios(goal: torch.Tensor, step: int, start: int,
                     sparse: int) -> torch.Tensor:
    r"""Linear ramp from dense to the goal keep ratios.

    .. math:: kr_i(t) = 1 - (1 - kr_i) \cdot
        \mathrm{clip}\left(\frac{t + 1 - t_{start}}{t_{sparse} - t_{start}},
        0, 1\right)

    Args:
        goal (Tensor): Goal keep ratio per block.
        step (int): Current iteration ``t``.
        start (int): Iteration pruning starts at.
        sparse (int): Iteration the goal is reached at.

    Returns:
        Tensor: Keep ratio per block at ``step``.
    """
    progress = min(max((step + 1 - start) / max(sparse - start, 1e-4), 0.0),
                   1.0)
    return 1.0 - (1.0 - goal) * progress


def temperature(step: int, sparse: int, final: int, tau_max: float = 0.1,
                tau_min: float = 0.0) -> float:
    """Soft-mask temperature: ``tau_max`` until ``sparse``, then linear to
    ``tau_min`` at ``final`` (0 = hard masks).

    Args:
        step (int): Current iteration.
        sparse (int): Iteration the annealing starts at.
        final (int): Iteration it ends at.
        tau_max (float): Temperature before ``sparse``. Defaults to 0.1.
        tau_min (float): Temperature from ``final`` on. Defaults to 0.

    Returns:
        float: The temperature.
    """
    if final > sparse:
        progress = min(max((step - sparse) / (final - sparse), 0.0), 1.0)
    else:
        progress = 1.0 if step >= sparse else 0.0
    return progress * tau_min + (1.0 - progress) * tau_max


def soft_mask(num: int, num_pruned: int, tau: float,
              device=None) -> torch.Tensor:
    r"""Soft mask over elements sorted by ascending importance.

    .. math:: m_j = \sigma\left(\ln 9 \cdot
        \frac{j - (k + 1/2)}{\tau \cdot n}\right),\quad j = 1..n

    where ``k`` elements are pruned: ``m >= 0.5`` exactly for the ``n - k``
    most important elements, and the mask is 0.9 (0.1) one ``tau * n``
    positions above (below) the threshold. ``tau = 0`` gives a hard 0/1
    mask.

    Args:
        num (int): ``n``, number of elements.
        num_pruned (int): ``k``, elements below the threshold.
        tau (float): Temperature (fraction of ``n``).
        device (torch.device, optional): Device. Defaults to None.

    Returns:
        Tensor: Mask values in sorted order, shape (n, ).
    """
    pos = torch.arange(1, num + 1, dtype=torch.float64, device=device)
    if tau <= 0:
        return (pos > num_pruned).double()
    return torch.sigmoid(LOG9 * (pos - num_pruned - 0.5) / (tau * num))


def choose_num_pruned(params_by_k: torch.Tensor,
                      goal: float) -> Tuple[int, float]:
    """Pick how many of the sorted elements to prune.

    Args:
        params_by_k (Tensor): Exact parameter count of the block when its
            ``k`` least important elements are pruned, for k = 0..n.
        goal (float): Parameters the block may keep.

    Returns:
        tuple: ``k`` closest to the goal (fewest pruned on ties) and the
        resulting parameter count.
    """
    err = (params_by_k.double() - goal).abs()
    k = int(torch.argmin(err).item())  # first minimum = fewest pruned
    return k, float(params_by_k[k].item())
