"""ART: Adaptive Regularized Training with the HyperSparse loss, as a hook."""
from functools import partial
from typing import Optional

from mmengine.dist import all_reduce, get_rank, get_world_size

from mmsparse.art import (NEVER_PRUNED, PHASES, ARTController, event_line,
                          named_errors, settings_line, step_line, step_scalars,
                          switch_line)
from mmsparse.registry import HOOKS
from .criterion_batches import build_criterion_loader, score_batch
from .pruning_base import BaseMaskedPruningHook

_reduce_sum = partial(all_reduce, op='sum')


@HOOKS.register_module()
class ARTHook(BaseMaskedPruningHook):
    """Adaptive Regularized Training (ART) with the HyperSparse loss.

    Glandorf, Kaiser, Rosenhahn: "HyperSparse Neural Networks: Shifting
    Exploration to Exploitation through Adaptive Regularization", ICCV 2023
    workshops, https://arxiv.org/abs/2308.07163.

    Three phases over one run (:mod:`mmsparse.art.phases`): dense warm-up;
    ART (``λ_e·R(w)`` in the loss, ``λ_e = λ_0·η^e``; after every step the
    model's magnitude-pruned copy at ``target_sparsity`` is scored on
    training data, :class:`~mmsparse.art.CriterionScores`, until the best
    window mean beats the dense score); fine-tuning of the best pruned model
    under its fixed mask. The accuracy criterion reads the training accuracy
    from the loss dict (mmpretrain: ``head=dict(cal_acc=True)``); the loss
    criterion (the task loss) works for any model.

    Args:
        target_sparsity (float): κ, fraction of prunable weights pruned, in
            (0, 1).
        regularizer (str): 'hypersparse', 'l1' or 'l2'.
            Defaults to 'hypersparse'.
        lambda_init (float): λ_0 > 0. Defaults to 5e-6 (reference code).
        eta (float): η > 1, growth of λ per ART step. Defaults to 1.05.
        warmup (int): Dense warm-up units. Defaults to 0.
        interval (int): Units per ART step. Defaults to 1.
        by_epoch (bool): Units are epochs (True) or iterations.
            Defaults to True.
        buffer (int): Half width of the sliding window. Defaults to 1.
        criterion (str): 'accuracy' (data samples with ``gt_label``), 'loss'
            (any model) or 'auto' (accuracy when the batches carry
            ``gt_label``). Defaults to 'auto'.
        dense_reference (str): 'train' (running training score of the ART
            step, the reference) or 'eval' (the dense model scored like the
            pruned copy; one more pass). Defaults to 'train'.
        eval_batches (int, optional): Training batches per rank for the
            criterion; None: one pass over the training set (epoch-based
            runs only). Defaults to None.
        max_art_steps (int, optional): Force the switch after this many ART
            steps. Defaults to None.
        min_finetune (int): Force the switch when fewer units than this
            would be left for fine-tuning. Defaults to 0.
        max_finetune (int, optional): Stop the run after this many fine-tune
            units (the reference fine-tunes for exactly 160 epochs).
            Defaults to None (fine-tune until the end of the run).
        rollback_to_best (bool): Fine-tune the best pruned model of the
            window (as the reference), not the current one. Defaults to True.
        stats_interval (int): ART iterations between logs of the
            regularizer's readable quantities (one pass over the weights
            each). Defaults to 10.
        clip_regularizer (bool): True: ``λ·R`` is in the loss, so gradient
            clipping scales it with the task gradient. False: ``λ·∇R`` is
            added after clipping (:mod:`mmsparse.art.regularizer_hooks`).
            Defaults to True.
        quantile_interval (int): HyperSparse: ART iterations between exact
            recomputations of the scale ``s = 0.6585 / q_κ(|w|)``; its
            relative change is logged as ``art_scale_drift``. Defaults to 1.
        window_rule (str): What a window's mean must beat for its middle
            model to become the best: ``'best_mean'`` (the best window mean
            so far) or ``'best_middle'`` (the best model's own score, the
            rule of the reference code's ``utils/art.py``); the two can pick
            different models and stop at different steps
            (:class:`~mmsparse.art.window.SlidingWindow`).
            Defaults to ``'best_mean'``.
        **kwargs: ``exclude``, ``prune_only``, ``include_frozen``,
            ``min_layer_density``, ``warn_layer_sparsity``,
            ``finetune_lr_milestones``, ``finetune_lr_gamma``,
            ``reset_optimizer``, ``plot``, ``plot_dir`` of
            :class:`BaseMaskedPruningHook`.

    Attributes ``lambda_``, ``phase``, ``art_step``, ``history``,
    ``switch_info`` (:class:`~mmsparse.art.ARTPhases`),
    ``resolved_criterion`` and ``val_history`` hold the running state.

    Logged every ``stats_interval`` ART iterations (HyperSparse's
    ``loss_art_reg`` is 0 by construction): ``art_reg_grad`` (``λ·‖∇R‖₂``;
    clipping rescales the task gradient once it dominates),
    ``art_small_share`` (HyperSparse: share of ``‖w‖₁`` the term still
    pushes) or ``art_reg_value`` (L1/L2: ``R``).
    """

    state_key = 'art_state'
    plot_prefix = 'art'

    def __init__(self,
                 target_sparsity: float,
                 regularizer: str = 'hypersparse',
                 lambda_init: float = 5e-6,
                 eta: float = 1.05,
                 warmup: int = 0,
                 interval: int = 1,
                 by_epoch: bool = True,
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
                 window_rule: str = 'best_mean',
                 **kwargs) -> None:
        super().__init__(by_epoch=by_epoch, **kwargs)
        with named_errors(type(self).__name__):
            self.art = ARTController(
                target_sparsity, regularizer, lambda_init, eta, warmup,
                interval, buffer, criterion, dense_reference, eval_batches,
                max_art_steps, min_finetune, max_finetune, rollback_to_best,
                stats_interval, clip_regularizer, quantile_interval,
                window_rule=window_rule)
        self.phases, self.scores, self.reg = (self.art.phases, self.art.scores,
                                              self.art.reg)
        # the settings, readable as before (fixed after construction)
        self.target_sparsity = self.art.target_sparsity
        self.regularizer = self.art.regularizer
        for key in ('lambda_init', 'eta', 'warmup', 'interval',
                    'max_art_steps', 'min_finetune', 'max_finetune'):
            setattr(self, key, getattr(self.phases, key))

    lambda_ = property(lambda self: self.phases.lambda_)
    phase = property(lambda self: self.phases.phase)
    art_step = property(lambda self: self.phases.art_step)
    history = property(lambda self: self.phases.history)
    switch_info = property(lambda self: self.phases.switch_info)
    resolved_criterion = property(lambda self: self.scores.resolved)
    val_history = property(lambda self: self.art.val_history)

    # -------------------------------------------------------- lifecycle
    def _check_run(self, runner) -> None:
        with named_errors('ARTHook'):
            self.art.check_run(self._max_units(runner), self.unit_name,
                               self.by_epoch)
        clip = getattr(runner.optim_wrapper, 'clip_grad_kwargs', None) or {}
        self.art.clip.clip_norm = clip.get('max_norm')

    def before_train(self, runner) -> None:
        super().before_train(runner)
        self._eval_loader = build_criterion_loader(runner)
        self.reg.attach(self._model(runner), self.pruning.weights,
                        self._optimizers(runner))
        runner.logger.info(f'ARTHook: {settings_line(self.art)}')

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        self.reg.begin_iter()

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        self.reg.end_iter()
        if self.phase == 'art':
            self.art.train_iter(
                outputs, data_batch,
                _reduce_sum if get_world_size() > 1 else None)
            if self.every_n_train_iters(runner, self.art.stats_interval):
                scalars, warning = self.art.regularizer_report()
                for key, value in scalars.items():
                    runner.message_hub.update_scalar(f'train/{key}', value)
                if warning is not None:
                    runner.logger.warning(f'ARTHook: {warning}')
        runner.message_hub.update_scalar('train/art_lambda', self.lambda_)
        runner.message_hub.update_scalar('train/art_phase',
                                         PHASES.index(self.phase))
        super().after_train_iter(runner, batch_idx, data_batch, outputs)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.art.add_validation(
            runner.epoch if self.by_epoch else runner.iter, metrics)

    def after_train(self, runner) -> None:
        self.reg.detach()
        if self.phase != 'finetune':
            runner.logger.warning(f'ARTHook: {NEVER_PRUNED}')
        self._plot_curves(runner)
        super().after_train(runner)

    # ------------------------------------------------------------ phases
    def after_unit(self, runner, completed: int) -> None:
        event = self.phases.advance(completed, self.switch_unit)
        if event == 'art_step':
            self._art_step(runner, completed)
        elif event is not None:  # 'art_begins' or 'finetune_done'
            if event == 'finetune_done':
                runner.train_loop.stop_training = True
            runner.logger.info('ARTHook: ' + event_line(
                event, completed, self.unit_name, self.lambda_init,
                self.max_finetune))

    def _art_step(self, runner, completed: int) -> None:
        masks = self.pruning.global_masks(self.target_sparsity)
        rec, reason = self.art.step(
            self._model(runner), self.pruning.weights, masks,
            self._eval_loader,
            lambda model, data: score_batch(model, data, self.scores.resolved),
            _reduce_sum, get_rank(), completed, self._max_units(runner))
        metric = self.scores.metric_name
        runner.logger.info('ARTHook [art] ' + step_line(
            rec, metric, self.unit_name, completed, self.target_sparsity))
        runner.visualizer.add_scalars(step_scalars(rec, metric),
                                      step=completed)
        if reason is None:
            return
        # switch: fine-tune the chosen pruned model (plots: the weights now)
        magnitudes, threshold = self.pruning.magnitudes_and_threshold(
            self.target_sparsity)
        masks, chosen = self.art.rollback_model(self._model(runner), masks)
        self._switch_to_finetune(runner, completed, masks)
        self.phases.switch(completed, reason, chosen, self.sparsity)
        runner.logger.info('ARTHook: ' + switch_line(
            self.unit_name, completed, reason, chosen, self.sparsity))
        self._plot_masks(runner, 'switch', magnitudes, threshold)
        self._plot_curves(runner)

    # ------------------------------------------------------------- state
    def state_dict(self) -> dict:
        return dict(super().state_dict(), **self.art.state_dict())

    def load_state_dict(self, state: dict) -> None:
        self.art.load_state_dict(state, self.pruning.device)
        super().load_state_dict(state)

    def _plot_curves(self, runner) -> None:
        plots = self._plots(runner)
        if plots is not None:
            plots.art_curves(
                self.phases.history, self.scores.metric_name, self.unit_name,
                self.switch_unit, self.val_history
                if self.scores.resolved == 'accuracy' else None)
