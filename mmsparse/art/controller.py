"""ART as one plain-PyTorch object: settings, step, rollback and state.

Composes :class:`~mmsparse.art.phases.ARTPhases` (phases, λ, window),
:class:`~mmsparse.art.criterion_scores.CriterionScores` (dense vs. pruned
scores), :class:`~mmsparse.art.regularizer_hooks.RegularizerHooks` (``λ·R``
in training) and :class:`~mmsparse.art.snapshots.SnapshotWindow` (the pruned
models to roll back to). A training framework supplies the batches, a
per-batch score function, the sum over ranks, and calls :meth:`step` after
every ART step.
"""
from typing import Callable, Dict, Iterable, Mapping, Optional, Tuple

import torch

from .arguments import check_int, check_optional_int
from .criterion_scores import CriterionScores, ReduceSum
from .hypersparse import check_regularizer, hypersparse_stats
from .magnitude import check_sparsity
from .phases import ARTPhases
from .regularizer_hooks import RegularizerHooks
from .reporting import ClipWatch
from .snapshots import SnapshotWindow, pruned_snapshot, restore_snapshot


class ARTController:
    """Adaptive Regularized Training, without a training loop.

    Args:
        target_sparsity (float): κ in (0, 1).
        regularizer (str): 'hypersparse', 'l1' or 'l2'.
        lambda_init, eta, warmup, interval, buffer, max_art_steps,
            min_finetune, max_finetune, window_rule: See
            :class:`~mmsparse.art.phases.ARTPhases`.
        criterion (str), dense_reference (str): See
            :class:`~mmsparse.art.criterion_scores.CriterionScores`.
        eval_batches (int, optional): Batches per rank the criterion is
            scored on (None: all). Defaults to None.
        rollback_to_best (bool): Fine-tune the window's best pruned model,
            not the current one. Defaults to True.
        stats_interval (int): Iterations between regularizer statistics.
            Defaults to 10.
        clip_regularizer (bool), quantile_interval (int): See
            :class:`~mmsparse.art.regularizer_hooks.RegularizerHooks`.
        owner (str): Prefix of run-time error messages.
            Defaults to 'ARTHook'.
    """

    def __init__(self,
                 target_sparsity: float,
                 regularizer: str = 'hypersparse',
                 lambda_init: float = 5e-6,
                 eta: float = 1.05,
                 warmup: int = 0,
                 interval: int = 1,
                 buffer: int = 1,
                 criterion: str = 'auto',
                 dense_reference: str = 'train',
                 eval_batches: Optional[int] = None,
                 max_art_steps: Optional[int] = None,
                 min_finetune: int = 0,
                 max_finetune: Optional[int] = None,
                 rollback_to_best: bool = True,
                 stats_interval: int = 10,
                 clip_regularizer: bool = True,
                 quantile_interval: int = 1,
                 owner: str = 'ARTHook',
                 window_rule: str = 'best_mean') -> None:
        self.target_sparsity = check_sparsity(target_sparsity)
        self.regularizer = check_regularizer(regularizer)
        self.phases = ARTPhases(lambda_init, eta, warmup, interval, buffer,
                                max_art_steps, min_finetune, max_finetune,
                                window_rule)
        self.eval_batches = check_optional_int('eval_batches', eval_batches,
                                               1)
        self.stats_interval = check_int('stats_interval', stats_interval, 1)
        self.scores = CriterionScores(criterion, dense_reference, owner)
        self.reg = RegularizerHooks(regularizer, self.target_sparsity,
                                    self.phases, quantile_interval,
                                    clip_regularizer, owner)
        self.snapshots = SnapshotWindow(buffer)
        self.rollback_to_best = bool(rollback_to_best)
        self.owner = owner
        #: Set its ``clip_norm`` to the run's gradient clipping norm.
        self.clip = ClipWatch()
        #: The first validation metric per unit (for the curves plot).
        self.val_history: list = []

    def check_run(self, total: int, unit: str, by_epoch: bool) -> None:
        """The phases must fit a run of ``total`` units (``unit``: 'epoch'
        or 'iter'); an iteration-based run (``by_epoch=False``) needs
        ``eval_batches``."""
        self.phases.check_run(total, unit)
        if not by_epoch and self.eval_batches is None:
            raise ValueError('an iteration-based run needs eval_batches (the '
                             'number of training batches the stop criterion '
                             'is measured on)')

    def train_iter(self, outputs: Optional[dict], data,
                   reduce_sum: Optional[ReduceSum] = None) -> None:
        """After a training iteration of the ART phase: check that ``λ·R``
        reached the loss dict ``outputs``, resolve the criterion on the
        batch ``data`` and (``dense_reference='train'``) add the iteration's
        training score, summed over ranks with ``reduce_sum``."""
        self.reg.check_reached_loss(outputs)
        self.scores.resolve(data)
        if self.scores.dense_reference == 'train':
            self.scores.add_train_step(outputs, reduce_sum)

    def regularizer_report(self) -> Tuple[Dict[str, float], Optional[str]]:
        """The regularizer's readable quantities
        (:meth:`~mmsparse.art.regularizer_hooks.RegularizerHooks.scalars`)
        and, the first time ``λ·‖∇R‖`` exceeds the clipping norm
        (:attr:`clip`), a warning (else None)."""
        scalars = self.reg.scalars()
        return scalars, self.clip.check(scalars['art_reg_grad'])

    def add_validation(self, unit: int, metrics: Optional[dict]) -> None:
        """Record the first of the validation ``metrics`` after ``unit``
        units (nothing without metrics)."""
        if metrics:
            key = next(iter(metrics))
            self.val_history.append(
                dict(unit=unit, key=key, value=float(metrics[key])))

    def step(self, model: torch.nn.Module,
             weights: Mapping[str, torch.nn.Parameter],
             masks: Dict[str, torch.Tensor], batches: Iterable,
             score_fn: Callable, reduce_sum: ReduceSum, rank: int,
             completed: int, total: int) -> Tuple[dict, Optional[str]]:
        """One completed ART step: score the dense model and its copy
        pruned with ``masks`` (see
        :meth:`~mmsparse.art.criterion_scores.CriterionScores.evaluate`),
        update the window and keep a snapshot for the rollback.

        Returns:
            tuple: The history record (with ``hs_gain``, the HyperSparse
            gain of the weights) and the reason to switch, or None.
        """
        dense, pruned = self.scores.evaluate(model, weights, masks, batches,
                                             self.eval_batches, score_fn,
                                             reduce_sum, rank)
        hs = hypersparse_stats(weights.values(), self.target_sparsity)
        record, improved, reason = self.phases.step(
            completed, total, dense, pruned, self.scores.sign,
            hs_gain=hs['gain'])
        if self.rollback_to_best:
            self.snapshots.add(
                pruned_snapshot(model.state_dict(), record['step'], masks),
                record['best_step'] if improved else None)
        return record, reason

    def rollback(self, current_masks: Dict[str, torch.Tensor]
                 ) -> Tuple[Optional[dict], Dict[str, torch.Tensor], int]:
        """The model to fine-tune: ``(state dict or None, masks, ART
        step)`` of the window's best snapshot (``rollback_to_best``), else
        None, ``current_masks`` and the last step. Drops the snapshots."""
        best = self.snapshots.best if self.rollback_to_best else None
        self.snapshots.clear()
        if best is None:
            return None, current_masks, self.phases.art_step - 1
        state, masks = restore_snapshot(best)
        return state, masks, best['step']

    def rollback_model(self, model: torch.nn.Module,
                       current_masks: Dict[str, torch.Tensor]
                       ) -> Tuple[Dict[str, torch.Tensor], int]:
        """:meth:`rollback` with the chosen snapshot loaded into ``model``:
        ``(masks, ART step)`` of the model to fine-tune."""
        state, masks, chosen = self.rollback(current_masks)
        if state is not None:
            model.load_state_dict(state)
        return masks, chosen

    def state_dict(self) -> dict:
        """Everything a resume needs, under the keys of the ART checkpoint
        state (``phase``, ``window``, ``snapshots``, ``config``,
        ``val_history``, ...)."""
        state = dict(config=dict(target_sparsity=self.target_sparsity,
                                 regularizer=self.regularizer))
        for part in (self.phases, self.scores, self.reg, self.snapshots):
            state.update(part.state_dict())
        state['val_history'] = list(self.val_history)
        return state

    def load_state_dict(self, state: dict,
                        device: Optional[torch.device] = None) -> None:
        """Restore from :meth:`state_dict`; the checkpoint's
        ``target_sparsity`` must be this one. ``device``: where the cached
        HyperSparse scale goes (the weights' device)."""
        saved = state.get('config', {}).get('target_sparsity',
                                            self.target_sparsity)
        if saved != self.target_sparsity:
            raise ValueError(
                f'{self.owner}: the checkpoint was trained with '
                f'target_sparsity={saved}, the config says '
                f'{self.target_sparsity}')
        for part in (self.phases, self.scores, self.snapshots):
            part.load_state_dict(state)
        self.reg.load_state_dict(state, device)
        self.val_history = list(state['val_history'])
