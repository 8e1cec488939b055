"""How ART's ``λ·R(w)`` reaches training, through plain PyTorch hooks.

A forward hook on the model adds ``λ·R(w)`` to the loss dict of a training
step (``mode='loss'``), so that gradient clipping scales it with the task
gradient; or (``clip_regularizer=False``) an optimizer step pre-hook adds
``λ·∇R`` to the gradients after clipping, and the loss dict carries the
value only. HyperSparse's detached scale ``s = 0.6585 / q_κ(|w|)`` can be
reused for ``quantile_interval`` calls (its relative change at each
recomputation is kept as :attr:`RegularizerHooks.drift`).
"""
from typing import Dict, Mapping, Optional, Sequence

import torch

from .arguments import check_int
from .hypersparse import (check_regularizer, hypersparse_scale,
                          regularization_loss, regularizer_stats)
from .phases import ARTPhases


class RegularizerHooks:
    """Adds ART's regularizer to the loss or to the gradients.

    Args:
        regularizer (str): 'hypersparse', 'l1' or 'l2'.
        kappa (float): Target sparsity κ.
        phases (ARTPhases): Gives the phase and λ; the term is active in
            the 'art' phase only (a constant 0 in the loss otherwise, so
            the log stays truthful).
        quantile_interval (int): Calls between exact recomputations of
            HyperSparse's scale. Defaults to 1.
        clip_regularizer (bool): Add ``λ·R`` to the loss (True) or ``λ·∇R``
            to the gradients after clipping (False). Defaults to True.
        owner (str): Prefix of run-time error messages.
            Defaults to 'ARTHook'.
    """

    def __init__(self,
                 regularizer: str,
                 kappa: float,
                 phases: ARTPhases,
                 quantile_interval: int = 1,
                 clip_regularizer: bool = True,
                 owner: str = 'ARTHook') -> None:
        self.regularizer = check_regularizer(regularizer)
        self.kappa = kappa
        self.phases = phases
        self.quantile_interval = check_int('quantile_interval',
                                           quantile_interval, 1)
        self.clip_regularizer = bool(clip_regularizer)
        self.owner = owner
        self.weights: Optional[Mapping[str, torch.nn.Parameter]] = None
        self.scale: Optional[torch.Tensor] = None
        self.scale_age = 0
        #: Relative change of the scale at its last recomputation.
        self.drift: Optional[float] = None
        self._active = False
        self._calls = 0
        self._checked = False
        self._model_handle = None
        self._step_handles: list = []

    # ------------------------------------------------------------ hooks
    def attach(self, model: torch.nn.Module,
               weights: Mapping[str, torch.nn.Parameter],
               optimizers: Sequence[torch.optim.Optimizer]) -> None:
        """Register the forward hook on ``model`` and (without
        ``clip_regularizer``) the step pre-hooks of ``optimizers``."""
        self.weights = weights
        if self._model_handle is None:
            self._model_handle = model.register_forward_hook(
                self.add_to_loss, with_kwargs=True)
        if not self.clip_regularizer and not self._step_handles:
            self._step_handles = [
                opt.register_step_pre_hook(self.add_to_grads)
                for opt in optimizers
            ]

    def detach(self) -> None:
        """Remove every registered hook."""
        if self._model_handle is not None:
            self._model_handle.remove()
            self._model_handle = None
        for handle in self._step_handles:
            handle.remove()
        self._step_handles = []

    def begin_iter(self) -> None:
        """A training iteration starts: the forward hook adds the term."""
        self._active = True
        self._calls = 0

    def end_iter(self) -> None:
        """The iteration is over (evaluation passes get no term)."""
        self._active = False

    def check_reached_loss(self, outputs) -> None:
        """Fail after the first ART iteration whose loss lacks the term."""
        if self._checked or not self.clip_regularizer:
            return
        logged = isinstance(outputs, dict) and 'loss_art_reg' in outputs
        if self._calls == 0 or not logged:
            raise RuntimeError(
                f'{self.owner}: the ART term did not reach the loss in this '
                f'iteration (forward hook calls: {self._calls}; '
                f'"loss_art_reg" in the train step outputs: {logged}). The '
                "hook adds it to the loss dict of model(..., mode='loss'); a "
                'train_step that computes the loss another way trains '
                'without the regularizer.')
        self._checked = True

    def add_to_loss(self, module, args, kwargs, output):
        """Forward hook: add ``λ·R(w)`` to the loss dict of a training step
        (a constant 0 outside the ART phase)."""
        if not (self._active and kwargs.get('mode') == 'loss'
                and isinstance(output, dict)):
            return output
        output = dict(output)
        self._calls += 1
        first = next(iter(self.weights.values()))
        if self.phases.phase != 'art':
            output['loss_art_reg'] = first.new_zeros(())
        elif not self.clip_regularizer:
            # the gradient is added after clipping; the value is logged
            with torch.no_grad():
                reg = regularization_loss(self.regularizer,
                                          self.weights.values(), self.kappa) \
                    if self.regularizer != 'hypersparse' else \
                    first.new_zeros(())
            output['loss_art_reg'] = reg * self.phases.lambda_
        else:
            reg = regularization_loss(self.regularizer, self.weights.values(),
                                      self.kappa, self.current_scale())
            output['loss_art_reg'] = reg * self.phases.lambda_
        return output

    @torch.no_grad()
    def add_to_grads(self, optimizer, args, kwargs) -> None:
        """Optimizer step pre-hook (``clip_regularizer=False``): add
        ``λ·∇R`` to the gradients, after the optimizer wrapper clipped (and
        unscaled) them."""
        if self.phases.phase != 'art':
            return
        owned = {id(p) for group in optimizer.param_groups
                 for p in group['params']}
        weights = [w for w in self.weights.values() if id(w) in owned]
        if not weights:
            return
        with torch.enable_grad():
            reg = regularization_loss(self.regularizer, self.weights.values(),
                                      self.kappa, self.current_scale())
            grads = torch.autograd.grad(reg, weights, allow_unused=True)
        lam = self.phases.lambda_
        for w, g in zip(weights, grads):
            if g is None:
                continue
            if w.grad is None:
                w.grad = g * lam
            else:
                w.grad.add_(g, alpha=lam)

    @torch.no_grad()
    def current_scale(self) -> Optional[torch.Tensor]:
        """HyperSparse's ``s``, recomputed every ``quantile_interval`` calls
        (None: let the loss compute it exactly)."""
        if self.regularizer != 'hypersparse' or self.quantile_interval == 1:
            return None
        if self.scale is None or self.scale_age >= self.quantile_interval:
            scale = hypersparse_scale(self.weights.values(), self.kappa)
            if self.scale is not None:
                self.drift = float((scale - self.scale).abs() / scale)
            self.scale, self.scale_age = scale, 0
        self.scale_age += 1
        return self.scale

    def scalars(self) -> Dict[str, float]:
        """Readable quantities to log (one pass over the weights, see
        :func:`~mmsparse.art.hypersparse.regularizer_stats`):
        ``art_reg_grad`` (``λ·‖∇R‖₂``), ``art_scale_drift`` (once the scale
        was recomputed), and ``art_small_share`` (HyperSparse) or
        ``art_reg_value`` (L1/L2: ``R``)."""
        stats = regularizer_stats(self.regularizer, self.weights.values(),
                                  self.kappa)
        scalars = dict(art_reg_grad=self.phases.lambda_ * stats['grad_norm'])
        if self.drift is not None:
            scalars['art_scale_drift'] = self.drift
        if 'small_share' in stats:
            scalars['art_small_share'] = stats['small_share']
        else:
            scalars['art_reg_value'] = stats['value']
        return scalars

    # ------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """``scale`` (CPU) and ``scale_age``."""
        return dict(
            scale=None if self.scale is None else self.scale.cpu(),
            scale_age=self.scale_age)

    def load_state_dict(self, state: dict,
                        device: Optional[torch.device] = None) -> None:
        """Restore from :meth:`state_dict` (missing keys: no scale)."""
        scale = state.get('scale')
        if scale is not None and device is not None:
            scale = scale.to(device)
        self.scale, self.scale_age = scale, state.get('scale_age', 0)
