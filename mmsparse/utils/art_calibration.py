"""λ of ART's regularizer against AdamW's per-weight scale.

With AdamW, a weight's update is the gradient divided by ``√v̂`` (the
bias-corrected second moment of its gradient). A regularizer gradient added
after clipping moves a weight once ``λ·|∂R/∂w_i| / √v̂_i`` exceeds ~1, so
``ρ_i = |∂R/∂w_i| / √v̂_i`` measured on a trained model tells which λ starts
to move the small weights (those below the κ-quantile, meant to be pruned)
and which starts to erode the largest ones (meant to stay).
"""
from typing import Dict, List, Mapping, Optional

import torch

from mmsparse.art import (global_magnitude_masks, hypersparse_grad,
                          hypersparse_stats, layers_above)


def adamw_ratios(weights: Mapping[str, torch.Tensor],
                 optimizer: torch.optim.Optimizer,
                 sparsity: float) -> Dict:
    """``ρ_i = |∂R/∂w_i| / √v̂_i`` of every weight.

    Args:
        weights (Mapping[str, Tensor]): The prunable weights (parameters
            of ``optimizer`` with AdamW state).
        optimizer (Optimizer): AdamW (``exp_avg_sq``, ``step``, ``betas``,
            ``eps``) after training.
        sparsity (float): κ of the HyperSparse regularizer R.

    Returns:
        dict: ``rho`` and ``magnitude`` (flat, over all weights) and
        ``step`` (the optimizer step).
    """
    group = optimizer.param_groups[0]
    beta2, eps = group['betas'][1], group['eps']
    grads = hypersparse_grad(list(weights.values()), sparsity)
    rho, mags, step = [], [], 0.0
    for w, g in zip(weights.values(), grads):
        state = optimizer.state[w]
        step = float(state['step'])
        v_hat = state['exp_avg_sq'] / (1 - beta2**step)
        rho.append((g.abs() / (v_hat.sqrt() + eps)).flatten())
        mags.append(w.detach().abs().flatten())
    return dict(rho=torch.cat(rho), magnitude=torch.cat(mags), step=step)


def calibration_report(weights: Mapping[str, torch.Tensor],
                       optimizer: torch.optim.Optimizer, sparsity: float,
                       lambda_init: float, eta: float, steps: int,
                       max_norm: Optional[float] = None,
                       other_weights: Optional[Mapping[str, Mapping]] = None,
                       sample: int = 1_000_000) -> List[str]:
    """The lines of a λ calibration on a trained model.

    Args:
        weights (Mapping[str, Tensor]): The prunable weights.
        optimizer (Optimizer): Their AdamW after training.
        sparsity (float): κ.
        lambda_init (float): λ0 of the config.
        eta (float): λ's growth per ART step.
        steps (int): ART steps of the longest ART phase (λ at the last one:
            ``λ0·η^(steps-1)``).
        max_norm (float, optional): The task gradient's clipping norm (for
            the text). Defaults to None.
        other_weights (Mapping[str, Mapping], optional): More weight sets
            (label -> weights) whose global magnitude masks are checked for
            layers pruned above 99 %, after ``weights`` ("the config's
            exclude"). Defaults to None.
        sample (int): Weights sampled for the quantiles. Defaults to
            1,000,000.

    Returns:
        list[str]: ``ρ`` quantiles below the κ-quantile of the magnitudes
        and over the largest 10 %, the λ at which the median ``λ·ρ`` is 1,
        ``λ·‖∇R‖`` at λ0 and at the last ART step, and the layers the
        global magnitude masks prune above 99 %.
    """
    ratios = adamw_ratios(weights, optimizer, sparsity)
    rho, mags = ratios['rho'], ratios['magnitude']
    order = mags.argsort()
    n = len(mags)
    stats = hypersparse_stats(list(weights.values()), sparsity)
    lam_end = lambda_init * eta**(steps - 1)
    lines = [f'{n} prunable weights, κ = {sparsity}, AdamW step '
             f"{ratios['step']:.0f} of the dense model",
             f"HyperSparse: q_κ = {stats['quantile']:.4g}, gain s·‖w‖₁/T = "
             f"{stats['gain']:.3f}, ‖∇R‖ = {stats['grad_norm']:.4g}"]
    for name, part in (('below the κ-quantile', rho[order[:int(sparsity * n)]]),
                       ('largest 10 %', rho[order[int(0.9 * n):]])):
        q = torch.quantile(part[torch.randperm(len(part))[:sample]],
                           torch.tensor([0.1, 0.5, 0.9])).tolist()
        lines.append(f'ρ = |∂R/∂w| / √v̂, {name}: 10/50/90 % = {q[0]:.4g} / '
                     f'{q[1]:.4g} / {q[2]:.4g} -> λ·ρ = 1 at the median for '
                     f'λ = {1 / q[1]:.3g}')
        for label, lam in (('λ0', lambda_init),
                           (f'λ at ART step {steps - 1}', lam_end)):
            lines.append(f'    {label} = {lam:.3g}: median λ·ρ = '
                         f'{lam * q[1]:.3g}')
    lines.append(f"λ·‖∇R‖ at λ0 = {lambda_init * stats['grad_norm']:.3g}, at "
                 f"λ_end = {lam_end * stats['grad_norm']:.3g} (the task "
                 f'gradient is clipped to norm {max_norm})')
    return lines + mask_lines(dict({"the config's exclude": weights},
                                   **(other_weights or {})), sparsity)


def mask_lines(weight_sets: Mapping[str, Mapping], sparsity: float,
               above: float = 0.99) -> List[str]:
    """Per weight set (label -> weights), the layers that global magnitude
    masks at ``sparsity`` prune above ``above``."""
    lines = []
    for label, names in weight_sets.items():
        masks = global_magnitude_masks(names, sparsity)
        over = layers_above(masks, above)
        lines.append(
            f'global magnitude masks at {sparsity:g} on the dense model, '
            f'{label}: {len(over)} of {len(masks)} layers pruned above '
            f'{100 * above:g} %' + (': ' + ', '.join(
                f'{k} ({100 * v:.1f} %)' for k, v in over.items())
                if over else ''))
    return lines
