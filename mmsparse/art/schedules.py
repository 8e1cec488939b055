"""Schedules: ART's λ, GMP's cubic sparsity, step decay after pruning."""
import bisect
from typing import Optional, Sequence


def art_lambda(step: int, lambda_init: float, eta: float) -> float:
    """ART's regularization strength ``λ_e = λ_0 · η^(e − e_w)``.

    Args:
        step (int): Completed ART steps ``e − e_w`` (epochs, or intervals of
            iterations, since the end of the warm-up); 0 during the first.
        lambda_init (float): λ_0.
        eta (float): Growth factor η > 1 per ART step.

    Returns:
        float: λ for the current ART step.
    """
    if step < 0:
        raise ValueError(f'step must be >= 0, got {step}')
    return float(lambda_init) * float(eta)**int(step)


def gmp_sparsity(step: int, begin: int, end: int, final: float,
                 initial: float = 0.0) -> float:
    """Cubic sparsity schedule of gradual magnitude pruning.

    Zhu & Gupta, "To prune, or not to prune", 2017
    (https://arxiv.org/abs/1710.01878)::

        s_t = s_f + (s_i − s_f) · (1 − (t − t_0) / (t_end − t_0))³

    Args:
        step (int): Current step t (completed epochs or iterations).
        begin (int): t_0, first pruning step (sparsity ``initial``).
        end (int): t_end, last pruning step (sparsity ``final``).
        final (float): Final sparsity s_f.
        initial (float): Initial sparsity s_i. Defaults to 0.

    Returns:
        float: Sparsity at ``step``: 0 before ``begin``, ``final`` after
        ``end``.
    """
    if end < begin:
        raise ValueError(f'end ({end}) must be >= begin ({begin})')
    if step < begin:
        return 0.0
    if step >= end:
        return float(final)
    progress = (step - begin) / (end - begin)
    return float(final + (initial - final) * (1.0 - progress)**3)


def gmp_step_sparsity(step: int, begin: int, end: int, interval: int,
                      final: float, initial: float = 0.0) -> Optional[float]:
    """The sparsity GMP prunes to after ``step`` completed units, or None
    when ``step`` is no pruning step: pruning steps are ``begin, begin +
    interval, ...`` and ``end``; a scheduled sparsity of 0 prunes nothing.

    Args:
        step (int): Completed epochs or iterations.
        begin (int), end (int), final (float), initial (float): See
            :func:`gmp_sparsity`.
        interval (int): Units between pruning steps.

    Returns:
        float or None: :func:`gmp_sparsity` at a pruning step with a
        positive sparsity, else None.
    """
    if step < begin or step > end:
        return None
    if step != end and (step - begin) % interval != 0:
        return None
    sparsity = gmp_sparsity(step, begin, end, final, initial)
    return sparsity if sparsity > 0 else None


def step_decay_factor(step: int, milestones: Sequence[int],
                      gamma: float) -> float:
    """``gamma ** (number of milestones <= step)``."""
    return float(gamma)**bisect.bisect_right(sorted(milestones), step)
