"""ART: Adaptive Regularized Training with the HyperSparse loss, as a hook."""
from functools import partial

from mmengine.dist import all_reduce, get_rank, get_world_size

from mmsparse.art import (NEVER_PRUNED, PHASES, ARTController, event_line,
                          named_errors, settings_line, step_line, step_scalars,
                          switch_line)
from mmsparse.registry import HOOKS
from mmsparse.utils.settings import check_settings, method_parameters
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
        by_epoch (bool): Units (``warmup``, ``interval``, ...) are epochs
            (True) or iterations. Defaults to True.
        **kwargs: Keyword arguments of :class:`BaseMaskedPruningHook`
            (``exclude``, ``prune_only``, ``include_frozen``,
            ``min_layer_density``, ``warn_layer_sparsity``,
            ``finetune_lr_milestones``, ``finetune_lr_gamma``,
            ``reset_optimizer``, ``plot``, ``plot_dir``) and of
            :class:`~mmsparse.art.ARTController`, passed through unchanged
            with its defaults: ``regularizer`` ('hypersparse', 'l1',
            'l2'), ``lambda_init`` (λ_0), ``eta`` (η > 1, growth of λ per
            ART step), ``warmup`` (dense warm-up units), ``interval``
            (units per ART step), ``buffer`` (half width of the sliding
            window), ``criterion`` ('accuracy' with ``gt_label`` samples,
            'loss' for any model, 'auto'), ``dense_reference`` ('train':
            the running training score of the ART step, the reference;
            'eval': the dense model scored like the pruned copy),
            ``eval_batches`` (training batches per rank for the criterion;
            None: one pass, epoch-based runs only), ``max_art_steps``,
            ``min_finetune``, ``max_finetune`` (stop after this many
            fine-tune units), ``rollback_to_best`` (fine-tune the window's
            best pruned model, as the reference), ``stats_interval`` (ART
            iterations between logs of the regularizer's quantities),
            ``clip_regularizer`` (True: ``λ·R`` is in the loss and gradient
            clipping scales it; False: ``λ·∇R`` is added after clipping),
            ``quantile_interval`` (HyperSparse: iterations between exact
            recomputations of the scale; its drift is logged) and
            ``window_rule`` ('best_mean' or 'best_middle', the rule of the
            reference code; :class:`~mmsparse.art.window.SlidingWindow`).

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
                 by_epoch: bool = True,
                 **kwargs) -> None:
        owner = type(self).__name__
        base = method_parameters(BaseMaskedPruningHook, ('by_epoch', ))
        hook_kwargs = {k: v for k, v in kwargs.items() if k in base}
        settings = {k: v for k, v in kwargs.items() if k not in base}
        try:
            check_settings(ARTController, settings, owner, ('owner', ))
        except TypeError as err:
            raise TypeError(f'{err}, and those of BaseMaskedPruningHook: '
                            f'{sorted(base)}') from None
        super().__init__(by_epoch=by_epoch, **hook_kwargs)
        with named_errors(owner):
            self.art = ARTController(target_sparsity, owner=owner,
                                     **settings)
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
