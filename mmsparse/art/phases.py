"""ART's phases and its step / switch decision, in plain Python.

Glandorf, Kaiser, Rosenhahn: "HyperSparse Neural Networks: Shifting
Exploration to Exploitation through Adaptive Regularization", ICCV 2023
workshops, https://arxiv.org/abs/2308.07163.

Three phases over one run (counted in *units*: epochs or iterations):

1. **warm-up** (``warmup`` units, dense; 0 from a pretrained model);
2. **ART**: the loss gets ``λ_e · R(w)`` with ``λ_e = λ_0 · η^e`` (``e`` =
   completed ART steps of ``interval`` units); no mask, weights only
   shrink. After every ART step the model is globally magnitude-pruned to
   the target sparsity (a copy) and scored; the scores enter a
   :class:`~mmsparse.art.window.SlidingWindow` of ``2·buffer + 1`` steps.
   ART stops once the best window mean beats the dense model's score of
   the step; the window's middle model (the best pruned model) is kept.
   ART is forced to end after ``max_art_steps`` steps, or when only
   ``min_finetune`` units of the run are left.
3. **fine-tune**: the chosen pruned model is trained under its fixed mask,
   to the end of the run or for ``max_finetune`` units.
"""
from typing import Optional, Tuple

from .arguments import check_finite_above, check_int, check_optional_int
from .schedules import art_lambda
from .window import SlidingWindow

PHASES = ('warmup', 'art', 'finetune')


class ARTPhases:
    """Phase, λ schedule, window and step history of ART.

    Args:
        lambda_init (float): λ_0 > 0.
        eta (float): η > 1, growth of λ per ART step.
        warmup (int): Dense warm-up units. Defaults to 0.
        interval (int): Units per ART step. Defaults to 1.
        buffer (int): Half width of the sliding window. Defaults to 1.
        max_art_steps (int, optional): Force the switch after this many ART
            steps. Defaults to None.
        min_finetune (int): Force the switch when fewer units than this
            would be left for fine-tuning. Defaults to 0.
        max_finetune (int, optional): Fine-tune units after which the run
            should stop. Defaults to None.
        window_rule (str): What a new window mean must beat to become the
            best: ``'best_mean'`` (the best window mean so far) or
            ``'best_middle'`` (the best model's own score, the reference
            code's rule); see :class:`~mmsparse.art.window.SlidingWindow`.
            Defaults to ``'best_mean'``.
    """

    def __init__(self,
                 lambda_init: float,
                 eta: float,
                 warmup: int = 0,
                 interval: int = 1,
                 buffer: int = 1,
                 max_art_steps: Optional[int] = None,
                 min_finetune: int = 0,
                 max_finetune: Optional[int] = None,
                 window_rule: str = 'best_mean') -> None:
        self.lambda_init = check_finite_above('lambda_init', lambda_init, 0)
        self.eta = check_finite_above('eta', eta, 1,
                                      ' (λ grows every ART step)')
        self.warmup = check_int('warmup', warmup, 0)
        self.interval = check_int('interval', interval, 1)
        self.min_finetune = check_int('min_finetune', min_finetune, 0)
        self.max_art_steps = check_optional_int('max_art_steps',
                                                max_art_steps, 1)
        self.max_finetune = check_optional_int('max_finetune', max_finetune,
                                               1)
        self.window = SlidingWindow(buffer, window_rule)
        self.phase = 'warmup' if warmup > 0 else 'art'
        self.art_step = 0
        self.art_begin: Optional[int] = 0 if warmup == 0 else None
        self.history: list = []
        self.switch_info: Optional[dict] = None

    @property
    def lambda_(self) -> float:
        """λ of the running ART step (0 outside ART)."""
        if self.phase != 'art':
            return 0.0
        return art_lambda(self.art_step, self.lambda_init, self.eta)

    def check_run(self, total: int, unit: str) -> None:
        """Warm-up, one ART step and ``min_finetune`` must fit the run of
        ``total`` units (``unit``: 'epoch' or 'iter')."""
        need = self.warmup + self.interval + self.min_finetune
        if need > total:
            raise ValueError(
                f'warmup ({self.warmup}) + interval ({self.interval}) + '
                f'min_finetune ({self.min_finetune}) = {need} {unit}s exceed '
                f'the run ({total} {unit}s)')

    def advance(self, completed: int,
                switch_unit: Optional[int] = None) -> Optional[str]:
        """What ``completed`` units mean: ``'art_begins'`` (the warm-up is
        over; the phase is now 'art'), ``'art_step'`` (an ART step is
        complete: score it and call :meth:`step`), ``'finetune_done'``
        (``max_finetune`` units after ``switch_unit``) or None."""
        if self.phase == 'warmup' and completed >= self.warmup:
            self.phase = 'art'
            self.art_begin = completed
            return 'art_begins'
        if (self.phase == 'art'
                and (completed - self.art_begin) % self.interval == 0):
            return 'art_step'
        if (self.phase == 'finetune' and self.max_finetune is not None
                and completed - switch_unit >= self.max_finetune):
            return 'finetune_done'
        return None

    def step(self,
             completed: int,
             total: int,
             dense: float,
             pruned: float,
             sign: float = 1.0,
             **extra) -> Tuple[dict, bool, Optional[str]]:
        """Record the scores (higher is better) of one ART step.

        Args:
            completed (int): Completed units.
            total (int): Units of the run.
            dense (float): Score of the dense model.
            pruned (float): Score of its magnitude-pruned copy.
            sign (float): Applied to the scores in the history record (-1:
                a loss criterion is recorded as the loss). Defaults to 1.
            **extra: More entries of the history record.

        Returns:
            tuple: The history record; whether the window's best entry
            changed (its step is ``record['best_step']``); the reason to
            switch to fine-tuning ('criterion', 'max_art_steps',
            'min_finetune') or None.
        """
        lam = self.lambda_
        step = self.art_step
        improved = self.window.update(step, pruned)
        stop = self.window.should_stop(dense)
        record = dict(
            unit=completed,
            step=step,
            **{'lambda': lam},
            dense=sign * dense,
            pruned=sign * pruned,
            window_mean=sign * self.window.mean,
            best_mean=sign * self.window.best['mean'],
            best_step=self.window.best['step'],
            **extra)
        self.history.append(record)
        self.art_step += 1
        reason = None
        if stop:
            reason = 'criterion'
        elif (self.max_art_steps is not None
              and self.art_step >= self.max_art_steps):
            reason = 'max_art_steps'
        elif total - completed <= self.min_finetune:
            reason = 'min_finetune'
        return record, improved, reason

    def switch(self, completed: int, reason: str, model_step: int,
               sparsity: float) -> None:
        """Enter fine-tuning with the pruned model of ART step
        ``model_step``."""
        self.phase = 'finetune'
        self.switch_info = dict(
            unit=completed, reason=reason, model_step=model_step,
            sparsity=sparsity)

    def state_dict(self) -> dict:
        """``phase``, ``art_step``, ``art_begin``, ``window``, ``history``
        and ``switch_info``."""
        return dict(
            phase=self.phase,
            art_step=self.art_step,
            art_begin=self.art_begin,
            window=self.window.state_dict(),
            history=list(self.history),
            switch_info=self.switch_info)

    def load_state_dict(self, state: dict) -> None:
        """Restore from :meth:`state_dict` (a checkpoint's ART state)."""
        self.phase = state['phase']
        self.art_step = state['art_step']
        self.art_begin = state['art_begin']
        self.window.load_state_dict(state['window'])
        self.history = list(state['history'])
        self.switch_info = state['switch_info']
