"""HyperSparse regularization and the L1/L2 ablations, in plain PyTorch.

Glandorf, Kaiser, Rosenhahn: "HyperSparse Neural Networks: Shifting
Exploration to Exploitation through Adaptive Regularization", ICCV 2023
workshops, https://arxiv.org/abs/2308.07163.

With ``w`` all prunable weights concatenated and κ the target sparsity::

    s      = artanh(1/√3) / q_κ(|w|)        (q_κ detached; artanh(1/√3) = 0.6585)
    T      = Σ_j tanh(s·|w_j|)
    R_HS   = ‖w‖₁ · T / sg(T) − ‖w‖₁        (sg: stop-gradient; value 0)
    ∂R_HS/∂w_i = sign(w_i) · s · sech²(s·|w_i|) · ‖w‖₁ / T

The gradient is computed in closed form (:class:`HyperSparseFunction`, and
in :func:`hypersparse_loss` a variant over the concatenated magnitudes the
quantile needs anyway: one ``tanh`` pass): no autograd graph over the
concatenated weights is built, and the quantile is an exact selection
(:func:`~mmsparse.art.magnitude.kth_smallest`), not a sort.
"""
import math
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch

from .magnitude import flat_magnitudes, magnitude_quantile

#: artanh(1/sqrt(3)): the threshold weight sits on the inflection point of sech².
HS_INFLECTION = math.atanh(1.0 / math.sqrt(3.0))

REGULARIZERS = ('hypersparse', 'l1', 'l2')


class HyperSparseFunction(torch.autograd.Function):
    """``R(w; s, T0) = ‖w‖₁ · T(w) / T0 − ‖w‖₁`` with ``s`` and ``T0`` held
    constant, and its exact gradient in closed form::

        ∂R/∂w_i = sign(w_i) · (T/T0 − 1) + ‖w‖₁ · s · sech²(s·|w_i|) / T0

    With ``T0 = sg(T)`` (the HyperSparse definition) the first term vanishes
    and the value is 0. The general form lets ``gradcheck`` verify the
    backward against finite differences.

    Call as ``HyperSparseFunction.apply(s, t0, *weights)``; ``t0=None``
    means ``T0 = sg(T)`` computed in the same pass (one ``tanh`` per weight
    instead of two).
    """

    @staticmethod
    def forward(ctx, s: torch.Tensor, t0: torch.Tensor,
                *weights: torch.Tensor) -> torch.Tensor:
        l1 = weights[0].new_zeros(())
        total_tanh = weights[0].new_zeros(())
        tanhs = []
        for w in weights:
            th = torch.tanh(s * w.abs())
            tanhs.append(th)
            l1 = l1 + w.abs().sum()
            total_tanh = total_tanh + th.sum()
        if t0 is None:
            t0 = total_tanh.detach().clamp_min(
                torch.finfo(total_tanh.dtype).tiny)
        ctx.save_for_backward(s, t0, l1, total_tanh, *weights, *tanhs)
        ctx.num_weights = len(weights)
        return l1 * total_tanh / t0 - l1

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        s, t0, l1, total_tanh, *rest = ctx.saved_tensors
        n = ctx.num_weights
        weights, tanhs = rest[:n], rest[n:]
        sign_coef = grad_output * (total_tanh / t0 - 1)
        sech_coef = grad_output * l1 * s / t0
        grads = []
        for w, th, needs in zip(weights, tanhs, ctx.needs_input_grad[2:]):
            if not needs:
                grads.append(None)
                continue
            grads.append(
                torch.sign(w) * (sign_coef + sech_coef * (1 - th * th)))
        return (None, None, *grads)


class _HyperSparseFlat(torch.autograd.Function):
    """``R_HS`` with ``T0 = sg(T)`` over the concatenated magnitudes ``a``
    that the quantile needed anyway: one ``tanh`` pass over ``a`` forward,
    ``sign(w)·c·(1 − tanh²)`` backward, no per-tensor ``abs``/``tanh``.

    Call as ``_HyperSparseFlat.apply(s, a, *weights)`` (``a`` detached, the
    ``|w|`` of ``weights`` in order).
    """

    @staticmethod
    def forward(ctx, s: torch.Tensor, flat_abs: torch.Tensor,
                *weights: torch.Tensor) -> torch.Tensor:
        th = torch.tanh(flat_abs * s)
        total = th.sum().clamp_min(torch.finfo(th.dtype).tiny)
        l1 = flat_abs.sum()
        ctx.save_for_backward(s, l1, total, th, *weights)
        return l1 * (total / total) - l1  # exactly 0

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        s, l1, total, th, *weights = ctx.saved_tensors
        sech2 = torch.mul(th, th).neg_().add_(1)
        sech2.mul_(grad_output * l1 * s / total)
        grads, offset = [], 0
        for w, needs in zip(weights, ctx.needs_input_grad[2:]):
            n = w.numel()
            if needs:
                part = sech2[offset:offset + n].view_as(w).to(w.dtype)
                grads.append(torch.sign(w).mul_(part))
            else:
                grads.append(None)
            offset += n
        return (None, None, *grads)


def hypersparse_scale(weights: Sequence[torch.Tensor],
                      kappa: float) -> torch.Tensor:
    """``s = 0.6585 / q_κ(|w|)`` (detached), guarded against a zero
    quantile."""
    weights = list(weights)
    flat = flat_magnitudes(weights)
    q = magnitude_quantile(flat, kappa)
    tiny = torch.finfo(flat.dtype).tiny
    return (HS_INFLECTION / q.clamp_min(tiny)).to(weights[0].dtype)


def hypersparse_loss(weights: Sequence[torch.Tensor],
                     kappa: float,
                     scale: Optional[torch.Tensor] = None) -> torch.Tensor:
    """HyperSparse regularization ``R_HS`` (value 0, closed-form gradient).

    Args:
        weights (Sequence[Tensor]): All prunable weights.
        kappa (float): Target sparsity κ in (0, 1).
        scale (Tensor, optional): A precomputed detached ``s`` (e.g. of a
            few iterations ago, see ``ARTHook(quantile_interval=...)``);
            None computes it (the exact κ-quantile). Defaults to None.

    Returns:
        Tensor: 0-dim tensor whose gradient w.r.t. each weight is
        ``sign(w) · s · sech²(s·|w|) · ‖w‖₁ / T``.
    """
    weights = list(weights)
    flat = flat_magnitudes(weights)
    if scale is None:
        q = magnitude_quantile(flat, kappa)
        scale = HS_INFLECTION / q.clamp_min(torch.finfo(flat.dtype).tiny)
    return _HyperSparseFlat.apply(scale.to(flat), flat, *weights)


@torch.no_grad()
def hypersparse_grad(weights: Sequence[torch.Tensor],
                     kappa: float) -> Tuple[torch.Tensor, ...]:
    """The closed-form HyperSparse gradient of each weight tensor."""
    weights = [w.detach() for w in weights]
    s = hypersparse_scale(weights, kappa)
    l1 = sum(w.abs().sum() for w in weights)
    tanhs = [torch.tanh(s * w.abs()) for w in weights]
    total = sum(th.sum() for th in tanhs).clamp_min(
        torch.finfo(weights[0].dtype).tiny)
    coef = s * l1 / total
    return tuple(
        torch.sign(w) * coef * (1 - th * th) for w, th in zip(weights, tanhs))


@torch.no_grad()
def hypersparse_stats(weights: Sequence[torch.Tensor],
                      kappa: float) -> Dict[str, float]:
    """Diagnostics of the HyperSparse term (its value is 0 by construction).

    Returns:
        dict: ``scale`` (s), ``quantile`` (q_κ), ``gain`` — the gradient
        magnitude on a weight near zero, ``s·‖w‖₁/T`` (≥ 1; ≈ 1 for a dense
        model, growing as the large weights saturate tanh) —, ``grad_norm``
        ``‖∇R_HS‖₂`` and ``small_share``, the share of ``‖w‖₁`` held by
        the weights the term still pushes, ``Σ|w|·sech²(s|w|) / ‖w‖₁``
        (falls as ART drives the small weights to zero).
    """
    weights = [w.detach() for w in weights]
    s = hypersparse_scale(weights, kappa)
    l1 = weights[0].new_zeros((), dtype=torch.float64)
    total = torch.zeros_like(l1)
    small = torch.zeros_like(l1)
    sq = torch.zeros_like(l1)
    for w in weights:
        a = w.abs()
        th = torch.tanh(s * a)
        sech2 = 1 - th * th
        l1 += a.sum(dtype=torch.float64)
        total += th.sum(dtype=torch.float64)
        small += (a * sech2).sum(dtype=torch.float64)
        sq += (sech2 * sech2)[a > 0].sum(dtype=torch.float64)
    coef = s * l1 / total.clamp_min(1e-30)
    return dict(
        scale=float(s),
        quantile=float(HS_INFLECTION / s),
        gain=float(coef),
        grad_norm=float(coef * sq.sqrt()),
        small_share=float(small / l1.clamp_min(1e-30)))


@torch.no_grad()
def regularizer_stats(name: str, weights: Sequence[torch.Tensor],
                      kappa: float) -> Dict[str, float]:
    """Readable quantities of a regularizer: ``grad_norm`` ``‖∇R‖₂`` for
    all, ``value`` (R) for L1/L2, and the :func:`hypersparse_stats` for
    HyperSparse."""
    name = check_regularizer(name)
    weights = [w.detach() for w in weights]
    if name == 'hypersparse':
        return hypersparse_stats(weights, kappa)
    if name == 'l1':
        nnz = sum(int((w != 0).sum()) for w in weights)
        return dict(value=float(l1_loss(weights)), grad_norm=math.sqrt(nnz))
    return dict(
        value=float(l2_loss(weights)),
        grad_norm=2 * math.sqrt(float(l2_loss(weights))))


def l1_loss(weights: Sequence[torch.Tensor], kappa: float = 0.0) -> torch.Tensor:
    """``Σ|w|`` (the paper's L1 ablation); ``kappa`` is ignored."""
    return sum(w.abs().sum() for w in weights)


def l2_loss(weights: Sequence[torch.Tensor], kappa: float = 0.0) -> torch.Tensor:
    """``Σw²`` (the paper's L2 ablation, squared norm); ``kappa`` is
    ignored."""
    return sum(w.pow(2).sum() for w in weights)


_REGULARIZER_FNS: Dict[str, Callable[..., torch.Tensor]] = {
    'hypersparse': hypersparse_loss,
    'l1': l1_loss,
    'l2': l2_loss,
}


def check_regularizer(name: str) -> str:
    """Validate a regularizer name (case-insensitive)."""
    if not isinstance(name, str) or name.lower() not in _REGULARIZER_FNS:
        raise ValueError(f'regularizer must be one of {REGULARIZERS}, got '
                         f'{name!r}')
    return name.lower()


def regularization_loss(name: str,
                        weights: Sequence[torch.Tensor],
                        kappa: float,
                        scale: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The regularizer ``name`` ('hypersparse', 'l1' or 'l2') of the weights.

    Args:
        name (str): Regularizer name.
        weights (Sequence[Tensor]): All prunable weights.
        kappa (float): Target sparsity (used by HyperSparse only).
        scale (Tensor, optional): HyperSparse's detached ``s``, if already
            known. Defaults to None.

    Returns:
        Tensor: 0-dim tensor to be scaled by λ and added to the loss.
    """
    name = check_regularizer(name)
    if name == 'hypersparse':
        return hypersparse_loss(list(weights), kappa, scale)
    return _REGULARIZER_FNS[name](list(weights), kappa)
