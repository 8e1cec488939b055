"""Step decay of the learning rate relative to the switch to fine-tuning."""
from typing import List, Optional, Sequence

import torch

from .schedules import step_decay_factor


class FinetuneLRDecay:
    """Multiply the learning rate by ``gamma`` at each milestone after the
    switch to fine-tuning.

    The base rates are those of the optimizers at the switch
    (:meth:`record`); :meth:`apply` sets ``base · gamma^(milestones passed)``
    for a given number of units since the switch.

    Args:
        milestones (Sequence[int]): Positive unit counts after the switch.
            Empty: the learning rate is left alone.
        gamma (float): Decay factor in (0, 1].
    """

    def __init__(self, milestones: Sequence[int], gamma: float) -> None:
        given = list(milestones or ())
        if not all(isinstance(m, int) and m > 0 for m in given):
            raise ValueError('finetune_lr_milestones must be positive ints, '
                             f'got {milestones!r}')
        if not 0.0 < float(gamma) <= 1.0:
            raise ValueError('finetune_lr_gamma must be in (0, 1], got '
                             f'{gamma}')
        self.milestones = sorted(given)
        self.gamma = float(gamma)
        self.base_lrs: Optional[List[List[float]]] = None

    def record(self, optimizers: Sequence[torch.optim.Optimizer]) -> None:
        """Remember the rate of every param group (at the switch)."""
        self.base_lrs = [[group['lr'] for group in opt.param_groups]
                         for opt in optimizers]

    def apply(self, optimizers: Sequence[torch.optim.Optimizer],
              elapsed: int) -> None:
        """Set the rates of the unit ``elapsed`` units after the switch
        (nothing without milestones or recorded rates)."""
        if not self.milestones or self.base_lrs is None:
            return
        factor = step_decay_factor(elapsed, self.milestones, self.gamma)
        for opt, lrs in zip(optimizers, self.base_lrs):
            for group, lr in zip(opt.param_groups, lrs):
                group['lr'] = lr * factor
