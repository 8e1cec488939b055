"""ART: Adaptive Regularized Training with the HyperSparse loss, as a hook."""
import math
from collections import OrderedDict, deque
from typing import Dict, Optional, Tuple

import torch
from mmengine.dataset import DefaultSampler
from mmengine.dist import all_reduce, get_rank, get_world_size, is_main_process
from torch.utils.data import DataLoader

from mmsparse.art import (SlidingWindow, art_lambda, check_regularizer,
                          check_sparsity, hypersparse_scale, hypersparse_stats,
                          magnitude_threshold, regularization_loss,
                          regularizer_stats)
from mmsparse.registry import HOOKS
from mmsparse.utils.sparse_checkpoint import (densify_state_dict, pack_bits,
                                              sparsify_state_dict, unpack_bits)
from .pruning_base import BaseMaskedPruningHook, named_errors

PHASES = ('warmup', 'art', 'finetune')
CRITERIA = ('auto', 'accuracy', 'loss')
DENSE_REFERENCES = ('train', 'eval')


@HOOKS.register_module()
class ARTHook(BaseMaskedPruningHook):
    """Adaptive Regularized Training (ART) with the HyperSparse loss.

    Glandorf, Kaiser, Rosenhahn: "HyperSparse Neural Networks: Shifting
    Exploration to Exploitation through Adaptive Regularization", ICCV 2023
    workshops, https://arxiv.org/abs/2308.07163.

    Three phases over one run of ``max_epochs`` (or ``max_iters``):

    1. **warm-up** (``warmup`` units, dense; 0 from a pretrained model);
    2. **ART**: the loss gets ``λ_e · R(w)`` with ``λ_e = λ_0 · η^e`` (``e`` =
       completed ART steps of ``interval`` units) and ``R`` the HyperSparse
       term (or L1/L2); no mask, weights only shrink. After every ART step
       the model is globally magnitude-pruned to ``target_sparsity`` (a
       copy: the live weights stay dense) and scored on training data in
       eval mode (accuracy, or the negated loss; all-reduced over ranks).
       The scores enter a sliding window of ``2·buffer + 1`` steps; ART
       stops once the best window mean beats the dense model's training
       score of the current step (the running mean over the step's
       iterations, as the reference code does, or with
       ``dense_reference='eval'`` the dense model scored like the copy).
       The window's middle model (the best pruned model) is kept.
    3. **fine-tune**: the best pruned model (``rollback_to_best``) or the
       current one is pruned for real and trained under the fixed mask to
       the end of the run (gradients masked in backward, weights and
       optimizer state masked after every step; no regrowth).

    ART is forced to end after ``max_art_steps`` steps, or when only
    ``min_finetune`` units of the run are left.

    The running training accuracy is read from the loss dict: an mmpretrain
    head needs ``cal_acc=True``. The loss criterion uses the task loss (the
    total loss without the ART term) and works for any model.

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
        criterion (str): 'accuracy' (data samples with ``gt_label``, e.g.
            mmpretrain classifiers), 'loss' (training loss, any model) or
            'auto' (accuracy when the batches carry ``gt_label``).
            Defaults to 'auto'.
        dense_reference (str): 'train' (running training score of the ART
            step, the reference) or 'eval' (the dense model scored in eval
            mode on the same batches as the pruned copy; stricter, one more
            pass). Defaults to 'train'.
        eval_batches (int, optional): Batches of training data per rank used
            for the criterion; None means one pass over the training set
            (epoch-based runs only). Defaults to None.
        max_art_steps (int, optional): Force the switch after this many ART
            steps. Defaults to None.
        min_finetune (int): Force the switch when fewer units than this
            would be left for fine-tuning. Defaults to 0.
        max_finetune (int, optional): End the run after this many fine-tune
            units (as mmengine's ``EarlyStoppingHook`` does), so that
            ``max_epochs`` only bounds an open-ended ART phase (the reference
            fine-tunes for exactly 160 epochs). Defaults to None (fine-tune
            until the end of the run).
        rollback_to_best (bool): Fine-tune the best pruned model of the
            window (as the reference) instead of the current one.
            Defaults to True.
        stats_interval (int): ART iterations between logs of the
            regularizer's readable quantities (one extra pass over the
            weights each). Defaults to 10.
        quantile_interval (int): HyperSparse: ART iterations between exact
            recomputations of the detached scale ``s = 0.6585 / q_κ(|w|)``
            (the selection over all weights is the costliest part of the
            term); in between the last ``s`` is used. Its relative change at
            each recomputation is logged as ``art_scale_drift``, the measured
            error of the reuse. Defaults to 1 (exact every iteration).
        clip_regularizer (bool): True: ``λ·R`` is part of the loss, so
            gradient clipping (``optim_wrapper.clip_grad``) scales its
            gradient together with the task gradient (the reference has no
            clipping). False: ``λ·∇R`` is added to the gradients after
            clipping (an optimizer step pre-hook), so clipping bounds the
            task gradient only and λ keeps its meaning. Defaults to True.
        **kwargs: ``exclude``, ``include_frozen``, ``min_layer_density``,
            ``warn_layer_sparsity``, ``finetune_lr_milestones``,
            ``finetune_lr_gamma``, ``reset_optimizer``, ``plot``,
            ``plot_dir`` of :class:`BaseMaskedPruningHook`.

    Logged every ``stats_interval`` ART iterations (the loss term
    ``loss_art_reg`` of HyperSparse is 0 by construction): ``art_reg_grad``
    (``λ·‖∇R‖₂``, compare it with the gradient clipping norm: clipping
    rescales the task gradient with it once ``λ·‖∇R‖`` dominates),
    ``art_small_share`` (HyperSparse: share of ``‖w‖₁`` in the weights the
    term still pushes) or ``art_reg_value`` (L1/L2: ``R``).
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
                 **kwargs) -> None:
        super().__init__(by_epoch=by_epoch, **kwargs)
        with named_errors(type(self).__name__):
            self._init_art(target_sparsity, regularizer, lambda_init, eta,
                           warmup, interval, buffer, criterion,
                           dense_reference, eval_batches, max_art_steps,
                           min_finetune, max_finetune, stats_interval)
            _check_int('quantile_interval', quantile_interval, 1)
        self.quantile_interval = quantile_interval
        self._scale: Optional[torch.Tensor] = None
        self._scale_age = 0
        self._drift: Optional[float] = None
        self.rollback_to_best = bool(rollback_to_best)
        self.clip_regularizer = bool(clip_regularizer)
        self._step_handles: list = []
        self.phase = 'warmup' if warmup > 0 else 'art'
        self.art_step = 0
        self.art_begin = 0 if warmup == 0 else None
        self.resolved_criterion: Optional[str] = None
        self.history: list = []
        self.val_history: list = []
        self.switch_info: Optional[dict] = None
        self._running = [0.0, 0.0]  # training score sum and count of a step
        self._snapshots: deque = deque(maxlen=buffer + 1)
        self._best_snapshot: Optional[dict] = None
        self._reg_active = False
        self._reg_handle = None
        self._reg_calls = 0
        self._reg_checked = False
        self._clip_warned = False

    def _init_art(self, target_sparsity, regularizer, lambda_init, eta,
                  warmup, interval, buffer, criterion, dense_reference,
                  eval_batches, max_art_steps, min_finetune, max_finetune,
                  stats_interval) -> None:
        self.target_sparsity = check_sparsity(target_sparsity)
        self.regularizer = check_regularizer(regularizer)
        if not (isinstance(lambda_init, (int, float))
                and math.isfinite(lambda_init) and lambda_init > 0):
            raise ValueError(f'lambda_init must be > 0, got {lambda_init!r}')
        if not (isinstance(eta, (int, float)) and math.isfinite(eta)
                and eta > 1):
            raise ValueError(f'eta must be > 1 (λ grows every ART step), got '
                             f'{eta!r}')
        _check_int('warmup', warmup, 0)
        _check_int('interval', interval, 1)
        _check_int('min_finetune', min_finetune, 0)
        if max_art_steps is not None:
            _check_int('max_art_steps', max_art_steps, 1)
        if eval_batches is not None:
            _check_int('eval_batches', eval_batches, 1)
        if max_finetune is not None:
            _check_int('max_finetune', max_finetune, 1)
        _check_int('stats_interval', stats_interval, 1)
        if criterion not in CRITERIA:
            raise ValueError(f'criterion must be one of {CRITERIA}, got '
                             f'{criterion!r}')
        if dense_reference not in DENSE_REFERENCES:
            raise ValueError(f'dense_reference must be one of '
                             f'{DENSE_REFERENCES}, got {dense_reference!r}')
        self.dense_reference = dense_reference
        self.lambda_init = float(lambda_init)
        self.eta = float(eta)
        self.warmup = warmup
        self.interval = interval
        self.criterion = criterion
        self.eval_batches = eval_batches
        self.max_art_steps = max_art_steps
        self.min_finetune = min_finetune
        self.max_finetune = max_finetune
        self.stats_interval = stats_interval
        self.window = SlidingWindow(buffer)

    @property
    def lambda_(self) -> float:
        """λ of the running ART step (0 outside ART)."""
        if self.phase != 'art':
            return 0.0
        return art_lambda(self.art_step, self.lambda_init, self.eta)

    # -------------------------------------------------------- lifecycle
    def _check_run(self, runner) -> None:
        total = self._max_units(runner)
        need = self.warmup + self.interval + self.min_finetune
        if need > total:
            raise ValueError(
                f'ARTHook: warmup ({self.warmup}) + interval '
                f'({self.interval}) + min_finetune ({self.min_finetune}) = '
                f'{need} {self.unit_name}s exceed the run '
                f'({total} {self.unit_name}s)')
        if not self.by_epoch and self.eval_batches is None:
            raise ValueError('ARTHook: an iteration-based run needs '
                             'eval_batches (the number of training batches '
                             'the stop criterion is measured on)')
        clip = getattr(runner.optim_wrapper, 'clip_grad_kwargs', None) or {}
        self._clip_norm = clip.get('max_norm')

    def before_train(self, runner) -> None:
        super().before_train(runner)
        self._eval_loader = self._build_eval_loader(runner)
        if self._reg_handle is None:
            self._reg_handle = self._model(runner).register_forward_hook(
                self._add_regularizer, with_kwargs=True)
        if not self.clip_regularizer and not self._step_handles:
            self._step_handles = [
                opt.register_step_pre_hook(self._add_regularizer_grad)
                for opt in self._optimizers(runner)
            ]
        runner.logger.info(
            f'ARTHook: phase {self.phase}, κ={self.target_sparsity}, '
            f'regularizer {self.regularizer}, λ0={self.lambda_init:g}, '
            f'η={self.eta}')

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        self._reg_active = True
        self._reg_calls = 0

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        self._reg_active = False
        if self.phase == 'art':
            self._check_reg_reached_loss(outputs)
            if self.resolved_criterion is None:
                self.resolved_criterion = self._resolve_criterion(data_batch)
            if self.dense_reference == 'train':
                self._accumulate_running(self._train_score(outputs))
            if (runner.iter + 1) % self.stats_interval == 0:
                self._log_reg_stats(runner)
        runner.message_hub.update_scalar('train/art_lambda', self.lambda_)
        runner.message_hub.update_scalar('train/art_phase',
                                         PHASES.index(self.phase))
        super().after_train_iter(runner, batch_idx, data_batch, outputs)

    def _check_reg_reached_loss(self, outputs) -> None:
        """Fail after the first ART iteration whose loss lacks the term."""
        if self._reg_checked or not self.clip_regularizer:
            return
        if self._reg_calls == 0 or not (isinstance(outputs, dict)
                                        and 'loss_art_reg' in outputs):
            logged = isinstance(outputs, dict) and 'loss_art_reg' in outputs
            raise RuntimeError(
                'ARTHook: the ART term did not reach the loss in this '
                f'iteration (forward hook calls: {self._reg_calls}; '
                f'"loss_art_reg" in the train step outputs: {logged}). The '
                "hook adds it to the loss dict of model(..., mode='loss'); a "
                'train_step that computes the loss another way trains '
                'without the regularizer.')
        self._reg_checked = True

    def _accumulate_running(self, score: float) -> None:
        """Add one iteration's training score. With several ranks the sum
        is all-reduced at once, so every rank (and rank 0's checkpoint)
        holds the global partial sum of the step."""
        if get_world_size() > 1:
            pair = torch.tensor([score, 1.0], dtype=torch.float64)
            all_reduce(pair, op='sum')
            score, count = pair.tolist()
        else:
            count = 1.0
        self._running[0] += score
        self._running[1] += count

    def _log_reg_stats(self, runner) -> None:
        """Readable quantities of the regularizer (see class docstring)."""
        stats = regularizer_stats(self.regularizer, self._weights.values(),
                                  self.target_sparsity)
        lam = self.lambda_
        hub = runner.message_hub
        hub.update_scalar('train/art_reg_grad', lam * stats['grad_norm'])
        if self._drift is not None:
            hub.update_scalar('train/art_scale_drift', self._drift)
        if 'small_share' in stats:
            hub.update_scalar('train/art_small_share', stats['small_share'])
        else:
            hub.update_scalar('train/art_reg_value', stats['value'])
        if (self._clip_norm is not None and not self._clip_warned
                and lam * stats['grad_norm'] > self._clip_norm):
            self._clip_warned = True
            runner.logger.warning(
                f'ARTHook: λ·‖∇R‖ = {lam * stats["grad_norm"]:.4g} exceeds '
                f'the gradient clipping norm {self._clip_norm:g}: clipping '
                'now scales the task gradient down with the regularizer\'s')

    def after_val_epoch(self, runner, metrics=None) -> None:
        if metrics:
            key = next(iter(metrics))
            self.val_history.append(
                dict(
                    unit=runner.epoch if self.by_epoch else runner.iter,
                    key=key,
                    value=float(metrics[key])))

    def after_train(self, runner) -> None:
        if self._reg_handle is not None:
            self._reg_handle.remove()
            self._reg_handle = None
        for handle in self._step_handles:
            handle.remove()
        self._step_handles = []
        if self.phase != 'finetune':
            runner.logger.warning(
                'ARTHook: the run ended in the ART phase; the model was '
                'never pruned (raise max_epochs/max_iters, set max_art_steps '
                'or min_finetune)')
        self._plot_curves(runner)
        super().after_train(runner)

    @staticmethod
    def _build_eval_loader(runner) -> DataLoader:
        """A private loader over the training set for the criterion.

        Own sampler (fixed seed, sharded over ranks) and plain batching:
        iterating the training loader itself would reset its persistent
        workers and stateful batch samplers under an iteration-based loop.
        """
        src = runner.train_dataloader
        batch_size = (getattr(src.batch_sampler, 'batch_size', None)
                      or src.batch_size or 1)
        sampler = DefaultSampler(src.dataset, shuffle=True, seed=0)
        return DataLoader(
            src.dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=src.num_workers,
            collate_fn=src.collate_fn,
            worker_init_fn=src.worker_init_fn)

    # ---------------------------------------------------- regularization
    def _add_regularizer(self, module, args, kwargs, output):
        """Forward hook: add ``λ·R(w)`` to the loss dict of a training step
        (a constant 0 outside the ART phase, so the log stays truthful)."""
        if not (self._reg_active and kwargs.get('mode') == 'loss'
                and isinstance(output, dict)):
            return output
        output = dict(output)
        self._reg_calls += 1
        if self.phase == 'art' and not self.clip_regularizer:
            # the gradient is added after clipping; the value is logged
            with torch.no_grad():
                reg = regularization_loss(self.regularizer,
                                          self._weights.values(),
                                          self.target_sparsity) \
                    if self.regularizer != 'hypersparse' else \
                    next(iter(self._weights.values())).new_zeros(())
            output['loss_art_reg'] = reg * self.lambda_
        elif self.phase == 'art':
            reg = regularization_loss(self.regularizer,
                                      self._weights.values(),
                                      self.target_sparsity,
                                      self._current_scale(module))
            output['loss_art_reg'] = reg * self.lambda_
        else:
            weight = next(iter(self._weights.values()))
            output['loss_art_reg'] = weight.new_zeros(())
        return output

    @torch.no_grad()
    def _current_scale(self, model) -> Optional[torch.Tensor]:
        """HyperSparse's ``s``, recomputed every ``quantile_interval`` calls
        (None: let the loss compute it exactly)."""
        if self.regularizer != 'hypersparse' or self.quantile_interval == 1:
            return None
        if self._scale is None or self._scale_age >= self.quantile_interval:
            scale = hypersparse_scale(self._weights.values(),
                                      self.target_sparsity)
            if self._scale is not None:
                self._drift = float((scale - self._scale).abs() / scale)
            self._scale, self._scale_age = scale, 0
        self._scale_age += 1
        return self._scale

    @torch.no_grad()
    def _add_regularizer_grad(self, optimizer, args, kwargs) -> None:
        """Optimizer step pre-hook (``clip_regularizer=False``): add
        ``λ·∇R`` to the gradients, after the optimizer wrapper clipped (and
        unscaled) them."""
        if self.phase != 'art':
            return
        owned = {id(p) for group in optimizer.param_groups
                 for p in group['params']}
        weights = [w for w in self._weights.values() if id(w) in owned]
        if not weights:
            return
        with torch.enable_grad():
            reg = regularization_loss(self.regularizer, self._weights.values(),
                                      self.target_sparsity,
                                      self._current_scale(None))
            grads = torch.autograd.grad(reg, weights, allow_unused=True)
        lam = self.lambda_
        for w, g in zip(weights, grads):
            if g is None:
                continue
            if w.grad is None:
                w.grad = g * lam
            else:
                w.grad.add_(g, alpha=lam)

    # ------------------------------------------------------------ phases
    def after_unit(self, runner, completed: int) -> None:
        if self.phase == 'warmup' and completed >= self.warmup:
            self.phase = 'art'
            self.art_begin = completed
            runner.logger.info(
                f'ARTHook: warm-up done after {completed} {self.unit_name}s; '
                f'ART starts (λ0={self.lambda_init:g})')
        elif (self.phase == 'art'
              and (completed - self.art_begin) % self.interval == 0):
            self._art_step(runner, completed)
        elif (self.phase == 'finetune' and self.max_finetune is not None
              and completed - self.switch_unit >= self.max_finetune):
            runner.train_loop.stop_training = True
            runner.logger.info(
                f'ARTHook: {self.max_finetune} fine-tune {self.unit_name}s '
                'done; stopping the run')

    def _art_step(self, runner, completed: int) -> None:
        lam = self.lambda_
        masks = self._global_masks(self.target_sparsity)
        dense, pruned = self._evaluate(runner, masks)
        step = self.art_step
        improved = self.window.update(step, pruned)
        if self.rollback_to_best:
            self._snapshots.append(self._snapshot(runner, step, masks))
            if improved:
                mid = self.window.best['step']
                self._best_snapshot = next(
                    s for s in self._snapshots if s['step'] == mid)
        stop = self.window.should_stop(dense)
        hs = hypersparse_stats(self._weights.values(), self.target_sparsity)
        # scores are "higher is better"; log and plot the metric itself
        sign = 1.0 if self.resolved_criterion == 'accuracy' else -1.0
        record = dict(
            unit=completed,
            step=step,
            **{'lambda': lam},
            dense=sign * dense,
            pruned=sign * pruned,
            window_mean=sign * self.window.mean,
            best_mean=sign * self.window.best['mean'],
            best_step=self.window.best['step'],
            hs_gain=hs['gain'])
        self.history.append(record)
        metric = self._metric_name
        runner.logger.info(
            f'ARTHook [art] step {step} ({self.unit_name} {completed}): '
            f'λ={lam:.4g} dense {metric}={record["dense"]:.4f} pruned@'
            f'{100 * self.target_sparsity:g}% {metric}='
            f'{record["pruned"]:.4f} window mean='
            f'{record["window_mean"]:.4f} best mean='
            f'{record["best_mean"]:.4f} (step {record["best_step"]}) '
            f'hs_gain={hs["gain"]:.3f}')
        runner.visualizer.add_scalars(
            {
                'art/lambda': lam,
                f'art/dense_{metric}': record['dense'],
                f'art/pruned_{metric}': record['pruned'],
                f'art/window_mean_{metric}': record['window_mean'],
                'art/hs_gain': hs['gain'],
            },
            step=completed)
        self.art_step += 1
        reason = None
        if stop:
            reason = 'criterion'
        elif (self.max_art_steps is not None
              and self.art_step >= self.max_art_steps):
            reason = 'max_art_steps'
        elif self._max_units(runner) - completed <= self.min_finetune:
            reason = 'min_finetune'
        if reason is not None:
            self._switch(runner, completed, reason, masks)

    def _switch(self, runner, completed: int, reason: str,
                current_masks: Dict[str, torch.Tensor]) -> None:
        magnitudes = self._magnitudes()
        threshold = magnitude_threshold(self._weights, self.target_sparsity)
        best = self._best_snapshot if self.rollback_to_best else None
        if best is not None:
            self._model(runner).load_state_dict(
                densify_state_dict(best['state_dict']))
            masks = _unpack_masks(best['masks'])
            chosen = best['step']
        else:
            masks, chosen = current_masks, self.art_step - 1
        self.phase = 'finetune'
        self.switch_unit = completed
        self._set_masks(runner, masks, reset=self.reset_optimizer)
        self._record_base_lrs(runner)
        self._warn_collapsed_layers(runner)
        self._snapshots.clear()
        self._best_snapshot = None
        self.switch_info = dict(
            unit=completed, reason=reason, model_step=chosen,
            sparsity=self.sparsity)
        runner.logger.info(
            f'ARTHook: switch to fine-tuning after {self.unit_name} '
            f'{completed} ({reason}); pruned model of ART step {chosen}, '
            f'sparsity {100 * self.sparsity:.3f}%, masks fixed')
        self._plot_masks(runner, 'switch', magnitudes, threshold)
        self._plot_curves(runner)

    # -------------------------------------------------------- evaluation
    @property
    def _metric_name(self) -> str:
        return 'accuracy' if self.resolved_criterion == 'accuracy' else 'loss'

    @torch.no_grad()
    def _evaluate(self, runner,
                  masks: Dict[str, torch.Tensor]) -> Tuple[float, float]:
        """Scores (higher is better) of the dense model and of its pruned
        copy, summed over ranks.

        The pruned copy is scored on training batches: accuracy in eval mode
        (as the reference), the loss in training mode (mmdet heads compute
        losses for training mode only) with the normalization buffers
        restored afterwards. Both run under a fixed, forked RNG, so the
        training's random stream is untouched. The copy is made by swapping
        the tensors behind the prunable parameters, so no second model is
        built. The dense score is the running training score of the step,
        or (``dense_reference='eval'``) measured on the same batches in the
        same pass.
        """
        model = self._model(runner)
        was_training = model.training
        buffers = {n: b.clone() for n, b in model.named_buffers()}
        weight = next(iter(self._weights.values()))
        devices = [weight.device] if weight.is_cuda else []
        rng = torch.random.fork_rng(devices=devices)
        rng.__enter__()
        torch.manual_seed(0)
        dense_data = {n: w.data for n, w in self._weights.items()}
        pruned_data = {
            n: w.data * masks[n].to(w.device)
            for n, w in self._weights.items()
        }
        variants = [pruned_data]
        if self.dense_reference == 'eval':
            variants.append(dense_data)
        totals = torch.zeros(4, dtype=torch.float64)
        try:
            for i, data in enumerate(self._eval_loader):
                if self.eval_batches is not None and i >= self.eval_batches:
                    break
                if self.resolved_criterion is None:
                    self.resolved_criterion = self._resolve_criterion(data)
                model.train(self.resolved_criterion == 'loss')
                for j, tensors in enumerate(variants):
                    for n, w in self._weights.items():
                        w.data = tensors[n]
                    value, count = self._score_batch(model, data)
                    totals[2 * j] += value
                    totals[2 * j + 1] += count
        finally:
            for n, w in self._weights.items():
                w.data = dense_data[n]
            for n, b in model.named_buffers():
                b.copy_(buffers[n])
            model.train(was_training)
            rng.__exit__(None, None, None)
        if self.dense_reference == 'train':
            # already summed over ranks (_accumulate_running): rank 0 only
            if get_rank() == 0:
                totals[2:] = torch.tensor(self._running, dtype=torch.float64)
            self._running = [0.0, 0.0]
        all_reduce(totals, op='sum')
        if totals[1] == 0 or totals[3] == 0:
            raise RuntimeError('ARTHook: no batch to score the stop criterion '
                               'on (empty training dataloader?)')
        pruned = (totals[0] / totals[1]).item()
        dense = (totals[2] / totals[3]).item()
        if self.resolved_criterion == 'accuracy':
            # the training accuracy of the loss dict is already in percent
            scale = 100.0 if self.dense_reference == 'eval' else 1.0
            return scale * dense, 100.0 * pruned
        return -dense, -pruned

    def _resolve_criterion(self, data) -> str:
        samples = data.get('data_samples') if isinstance(data, dict) else None
        has_label = bool(samples) and all(
            hasattr(s, 'gt_label') for s in samples)
        if self.criterion == 'auto':
            return 'accuracy' if has_label else 'loss'
        if self.criterion == 'accuracy' and not has_label:
            raise ValueError(
                "ARTHook: criterion='accuracy' needs data samples with "
                "gt_label (classification); use criterion='loss'")
        return self.criterion

    def _train_score(self, outputs) -> float:
        """Training score of one iteration from the loss dict."""
        outputs = outputs or {}
        if self.resolved_criterion == 'accuracy':
            keys = [k for k in outputs if k.startswith('accuracy')]
            if not keys:
                raise ValueError(
                    "ARTHook: dense_reference='train' with the accuracy "
                    'criterion needs the training accuracy in the loss dict '
                    '(mmpretrain: head=dict(cal_acc=True)); or set '
                    "dense_reference='eval' or criterion='loss'")
            return float(outputs[sorted(keys)[0]])
        if 'loss' not in outputs:
            raise ValueError('ARTHook: the train step returned no "loss"')
        return float(outputs['loss']) - float(outputs.get('loss_art_reg', 0.0))

    def _score_batch(self, model, data) -> Tuple[float, float]:
        if self.resolved_criterion == 'accuracy':
            samples = model.test_step(data)
            pred = torch.stack([s.pred_label.flatten()[0] for s in samples])
            gt = torch.stack([s.gt_label.flatten()[0] for s in samples])
            return float((pred.cpu() == gt.cpu()).sum()), float(len(samples))
        data = model.data_preprocessor(data, True)
        if isinstance(data, dict):
            losses = model(**data, mode='loss')
        else:
            losses = model(*data, mode='loss')
        loss, _ = model.parse_losses(losses)
        return float(loss), 1.0

    # ------------------------------------------------------------- state
    def _snapshot(self, runner, step: int,
                  masks: Dict[str, torch.Tensor]) -> dict:
        """Compressed CPU copy of the model, magnitude-pruned with
        ``masks``: tensors in the smallest sparse encoding of
        :mod:`mmsparse.utils.sparse_checkpoint` (bit-exact), masks as packed
        bits. At sparsity κ the prunable weights take ~(1 − κ) of their
        dense size, so the window's snapshots in every ART-phase checkpoint
        add little to the model's size."""
        state = OrderedDict()
        for key, value in self._model(runner).state_dict().items():
            value = value.detach()
            if key in masks:
                value = value * masks[key].to(value.device)
                value += 0  # -0.0 -> +0.0, as masked_fill
            else:
                value = value.clone()
            state[key] = value
        return dict(
            step=step,
            state_dict=sparsify_state_dict(state),
            masks=OrderedDict(
                (k, (tuple(v.shape), pack_bits(v.cpu())))
                for k, v in masks.items()))

    def state_dict(self) -> dict:
        state = super().state_dict()
        state.update(
            phase=self.phase,
            art_step=self.art_step,
            art_begin=self.art_begin,
            resolved_criterion=self.resolved_criterion,
            running=list(self._running),
            window=self.window.state_dict(),
            history=list(self.history),
            val_history=list(self.val_history),
            switch_info=self.switch_info,
            scale=None if self._scale is None else self._scale.cpu(),
            scale_age=self._scale_age,
            snapshots=list(self._snapshots),
            best_step=None if self._best_snapshot is None else
            self._best_snapshot['step'],
            best_snapshot=self._best_snapshot,
            config=dict(
                target_sparsity=self.target_sparsity,
                regularizer=self.regularizer))
        return state

    def load_state_dict(self, state: dict) -> None:
        cfg = state.get('config', {})
        if cfg.get('target_sparsity', self.target_sparsity) != \
                self.target_sparsity:
            raise ValueError(
                'ARTHook: the checkpoint was trained with target_sparsity='
                f'{cfg["target_sparsity"]}, the config says '
                f'{self.target_sparsity}')
        super().load_state_dict(state)
        self.phase = state['phase']
        self.art_step = state['art_step']
        self.art_begin = state['art_begin']
        self.resolved_criterion = state['resolved_criterion']
        self._running = list(state['running'])
        self.window.load_state_dict(state['window'])
        self.history = list(state['history'])
        self.val_history = list(state['val_history'])
        self.switch_info = state['switch_info']
        scale = state.get('scale')
        if scale is not None and self._weights:
            scale = scale.to(next(iter(self._weights.values())).device)
        self._scale, self._scale_age = scale, state.get('scale_age', 0)
        self._snapshots.clear()
        self._snapshots.extend(state['snapshots'])
        self._best_snapshot = state['best_snapshot']

    # ------------------------------------------------------------ plots
    def _plot_curves(self, runner) -> None:
        if not (self.plot and is_main_process()) or not self.history:
            return
        from mmsparse.utils.pruning_plots import plot_art_curves
        val = [dict(unit=v['unit'], value=v['value'])
               for v in self.val_history]
        plot_art_curves(
            self.history,
            self._work_path(runner, 'curves'),
            metric=self._metric_name,
            unit=self.unit_name,
            switch=self.switch_unit,
            val_history=val if self.resolved_criterion == 'accuracy' else
            None)


def _unpack_masks(packed: Dict[str, tuple]) -> Dict[str, torch.Tensor]:
    masks = OrderedDict()
    for name, item in packed.items():
        if torch.is_tensor(item):  # checkpoints before the packed format
            masks[name] = item.bool()
            continue
        shape, bits = item
        numel = 1
        for d in shape:
            numel *= d
        masks[name] = unpack_bits(bits, numel).view(shape)
    return masks


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) \
            or value < minimum:
        raise ValueError(f'{name} must be an int >= {minimum}, got {value!r}')
