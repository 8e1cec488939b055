"""Shared lifecycle of the unstructured pruning hooks (ART, one-shot, GMP).

An adapter over the runner: masks, floor, collapse warning and fine-tune lr
(:class:`mmsparse.art.MaskedPruning`) and plots (:class:`mmsparse.art.RunPlots`)
are plain PyTorch; this hook calls them, logs, and keeps their state and the
global random streams (:mod:`.resume`) in the checkpoint.
"""
import os.path as osp
from functools import partial
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.dist import broadcast, is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict
from mmengine.runner import IterBasedTrainLoop

from mmsparse.art import (DEFAULT_EXCLUDE, MaskedPruning, RunPlots, check_bool,
                          check_patterns, collect_prunable, named_errors)
from .resume import DeferredHookState, RandomStreamResume


class BaseMaskedPruningHook(Hook):
    """Base of the unstructured magnitude pruning hooks.

    Units: with ``by_epoch=True`` every count (``warmup``, ``interval``,
    milestones, ...) is in epochs, otherwise in iterations.

    Args:
        by_epoch (bool): Count in epochs (True) or iterations.
            Defaults to True.
        exclude (Sequence[str], optional): Regular expressions of parameter
            names that are never pruned. Defaults to None:
            :data:`mmsparse.art.DEFAULT_EXCLUDE` (patch embedding, VPP
            pruner, position embeddings, norms; matches nothing in a CNN).
            ``[]`` makes every Conv/Linear weight prunable. Applied to the
            weights that ``prune_only`` selects.
        prune_only (Sequence[str], optional): Regular expressions of
            parameter names (``re.search``); when given, only the weights
            matching at least one of them are candidates, and ``exclude``
            still removes names from those (e.g.
            ``['^backbone\\.blocks\\.']``: the ViT blocks of a Mask2Former
            model). Must match some Conv/Linear weight (checked before
            training). Defaults to None: every weight not excluded.
        include_frozen (bool): Prune parameters with ``requires_grad=False``
            too (they count in the quantile and the masks but cannot
            shrink). Defaults to False.
        min_layer_density (float): Per-layer floor in [0, 1): every layer
            keeps at least this fraction of its weights (the largest ones);
            the global sparsity is unchanged. Defaults to 0 (none).
        warn_layer_sparsity (float, optional): At the final mask, warn about
            every layer pruned above this fraction. Defaults to 0.99.
        finetune_lr_milestones (Sequence[int]): Units after the switch to
            fine-tuning at which the learning rate is multiplied by
            ``finetune_lr_gamma``; the rate is the one at the switch before
            the first milestone. Needs a run without ``param_scheduler``.
            Defaults to () (the hook leaves the learning rate alone).
        finetune_lr_gamma (float): Decay factor. Defaults to 0.1.
        reset_optimizer (bool): Clear the optimizer state (momentum, Adam
            moments) at the switch, as a freshly built optimizer would.
            Pruned entries are zeroed after every step regardless.
            Defaults to True.
        plot (bool): Write PNG plots under ``<work_dir>/<plot_dir>``.
            Defaults to True.
        plot_dir (str): Sub-directory of the work dir for plots.
            Defaults to 'plots'.
    """

    priority = 'NORMAL'
    #: Top-level checkpoint key of the hook state (set by subclasses).
    state_key = 'pruning_state'
    #: Prefix of the PNG files.
    plot_prefix = 'pruning'

    def __init__(self,
                 by_epoch: bool = True,
                 exclude: Optional[Sequence[str]] = None,
                 prune_only: Optional[Sequence[str]] = None,
                 include_frozen: bool = False,
                 min_layer_density: float = 0.0,
                 warn_layer_sparsity: Optional[float] = 0.99,
                 finetune_lr_milestones: Sequence[int] = (),
                 finetune_lr_gamma: float = 0.1,
                 reset_optimizer: bool = True,
                 plot: bool = True,
                 plot_dir: str = 'plots') -> None:
        name = type(self).__name__
        with named_errors(name):
            self.by_epoch = check_bool('by_epoch', by_epoch)
            exclude = check_patterns('exclude', exclude,
                                     none_means='the default exclusions')
            self.prune_only = check_patterns(
                'prune_only', prune_only, allow_empty=False,
                none_means='every weight not excluded')
            self.pruning = MaskedPruning(finetune_lr_milestones,
                                         finetune_lr_gamma, min_layer_density,
                                         warn_layer_sparsity, name,
                                         sync=partial(broadcast, src=0))
        self.exclude = list(DEFAULT_EXCLUDE if exclude is None else exclude)
        self.include_frozen = bool(include_frozen)
        self.finetune_lr_milestones = self.pruning.finetune_lr.milestones
        self.reset_optimizer = bool(reset_optimizer)
        self.plot = bool(plot)
        self.plot_dir = plot_dir
        self._loaded = DeferredHookState(name, self.state_key)
        self._rng = RandomStreamResume()

    # ------------------------------------------------------------ helpers
    @staticmethod
    def _model(runner) -> torch.nn.Module:
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    @property
    def unit_name(self) -> str:
        return 'epoch' if self.by_epoch else 'iter'

    def _max_units(self, runner) -> int:
        return runner.max_epochs if self.by_epoch else runner.max_iters

    @staticmethod
    def _optimizers(runner) -> List[torch.optim.Optimizer]:
        wrapper = runner.optim_wrapper
        if isinstance(wrapper, OptimWrapperDict):
            return [w.optimizer for w in wrapper.values()]
        return [wrapper.optimizer]

    #: Boolean keep-masks of the prunable weights (None: dense), their
    #: sparsity (0 without), the completed units at the switch to fine-tuning
    masks = property(lambda self: self.pruning.masks)
    sparsity = property(lambda self: self.pruning.sparsity)
    switch_unit = property(lambda self: self.pruning.switch_unit)

    # -------------------------------------------------------- lifecycle
    def before_train(self, runner) -> None:
        """Check the run, collect the prunable weights, restore state."""
        name = type(self).__name__
        if self.by_epoch and isinstance(runner.train_loop, IterBasedTrainLoop):
            raise ValueError(
                f'{name}: by_epoch=True, but the run is iteration-based '
                '(IterBasedTrainLoop); set by_epoch=False and give the counts '
                'in iterations')
        with named_errors(name):
            self.pruning.weights, summary = collect_prunable(
                self._model(runner), self.exclude, self.include_frozen,
                self.prune_only)
        runner.logger.info(f'{name}: {summary}')
        with named_errors(name):
            self.pruning.check_schedulers(bool(runner.param_schedulers))
        self._check_run(runner)
        self.pruning.check_floor(getattr(self, 'target_sparsity', None))
        state = self._loaded.take(runner)
        if state is not None:
            self.load_state_dict(state)
        self._rng.before_train(runner)
        self.pruning.bind(self._optimizers(runner))
        if not self.by_epoch:
            self._apply_finetune_lr(runner, runner.iter)

    def _check_run(self, runner) -> None:
        """Validate the hook against the run (subclasses)."""

    def before_train_epoch(self, runner) -> None:
        self._rng.before_train_epoch()
        if self.by_epoch:
            self._apply_finetune_lr(runner, runner.epoch)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        """Re-apply the masks after the optimizer step; then, for
        iteration-based counting, the unit logic."""
        self.pruning.enforce(self._optimizers(runner))
        runner.message_hub.update_scalar('train/sparsity', self.sparsity)
        if not self.by_epoch:
            self.after_unit(runner, runner.iter + 1)
            # set before RuntimeInfoHook logs the lr of the next iteration
            self._apply_finetune_lr(runner, runner.iter + 1)

    def after_train_epoch(self, runner) -> None:
        if self.by_epoch:
            self.after_unit(runner, runner.epoch + 1)

    def after_unit(self, runner, completed: int) -> None:
        """Called after each completed epoch/iteration (subclasses)."""

    def after_train(self, runner) -> None:
        self.pruning.remove_hooks()
        summary = self.pruning.summary()
        if summary is not None:
            runner.logger.info(f'{type(self).__name__}: {summary}')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[self.state_key] = self.state_dict()
        self._rng.save(checkpoint)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._rng.load(checkpoint)
        self._loaded.load(checkpoint)  # applied in before_train on resume

    def state_dict(self) -> dict:
        """Everything a resume needs: ``masks``, ``switch_unit``,
        ``base_lrs`` (plain tensors and Python values)."""
        return self.pruning.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.pruning.load_state_dict(state)

    # ---------------------------------------------------------- masking
    def _switch_to_finetune(self, runner, completed: int,
                            masks: Dict[str, torch.Tensor]) -> None:
        """Fix the final masks at ``completed`` units and warn about
        collapsed layers."""
        warning = self.pruning.switch_to_finetune(
            completed, masks, self._optimizers(runner), self.reset_optimizer)
        if warning is not None:
            runner.logger.warning(f'{type(self).__name__}: {warning}')

    def _apply_finetune_lr(self, runner, unit: int) -> None:
        """Set the lr of the unit with 0-based index ``unit``."""
        self.pruning.apply_finetune_lr(self._optimizers(runner), unit)

    # ------------------------------------------------------------ plots
    def _plots(self, runner) -> Optional[RunPlots]:
        """The run's plots (None: ``plot=False`` or not rank 0)."""
        if not (self.plot and is_main_process()):
            return None
        return RunPlots(osp.join(runner.work_dir, self.plot_dir),
                        self.plot_prefix)

    def _plot_masks(self, runner, tag: str,
                    magnitudes: Optional[torch.Tensor] = None,
                    threshold: Optional[float] = None) -> None:
        """Per-layer sparsity and (optionally) the weight-magnitude
        histogram, on rank 0."""
        plots = self._plots(runner)
        if plots is not None:
            plots.masks(tag, self.masks, magnitudes, threshold)
