"""Magnitude pruning baselines: one-shot + fine-tune, and gradual (GMP)."""
from typing import Optional

from mmsparse.art import (check_int, check_sparsity, gmp_step_sparsity,
                          named_errors)
from mmsparse.registry import HOOKS
from .pruning_base import BaseMaskedPruningHook


@HOOKS.register_module()
class OneShotMagnitudePruningHook(BaseMaskedPruningHook):
    """One-shot global magnitude pruning followed by masked fine-tuning.

    The classic baseline (Han et al., "Learning both Weights and
    Connections for Efficient Neural Networks", NeurIPS 2015,
    https://arxiv.org/abs/1506.02626), with one global threshold: after
    ``prune_at`` units of dense training the smallest ``target_sparsity``
    fraction of all prunable weights is zeroed and the rest of the run trains
    under the fixed mask (no regrowth).

    Args:
        target_sparsity (float): Fraction of prunable weights pruned, in
            (0, 1).
        prune_at (int): Completed epochs (or iterations) of dense training
            before pruning; 0 prunes before the first step (e.g. a
            pretrained ``load_from`` model).
        by_epoch (bool): Units are epochs (True) or iterations.
            Defaults to True.
        **kwargs: ``exclude``, ``prune_only``, ``include_frozen``,
            ``min_layer_density``, ``warn_layer_sparsity``,
            ``finetune_lr_milestones``, ``finetune_lr_gamma``,
            ``reset_optimizer``, ``plot``, ``plot_dir`` of
            :class:`BaseMaskedPruningHook`.
    """

    state_key = 'oneshot_pruning_state'
    plot_prefix = 'oneshot'

    def __init__(self,
                 target_sparsity: float,
                 prune_at: int,
                 by_epoch: bool = True,
                 **kwargs) -> None:
        super().__init__(by_epoch=by_epoch, **kwargs)
        with named_errors(type(self).__name__):
            self.target_sparsity = check_sparsity(target_sparsity)
            check_int('prune_at', prune_at, 0)
        self.prune_at = prune_at

    def _check_run(self, runner) -> None:
        total = self._max_units(runner)
        if self.prune_at >= total:
            raise ValueError(
                f'OneShotMagnitudePruningHook: prune_at ({self.prune_at}) '
                f'must be below the run length ({total} {self.unit_name}s)')

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if self.prune_at == 0 and self.masks is None:
            self._prune(runner, 0)

    def after_unit(self, runner, completed: int) -> None:
        if completed == self.prune_at and self.masks is None:
            self._prune(runner, completed)

    def _prune(self, runner, completed: int) -> None:
        magnitudes, threshold = self.pruning.magnitudes_and_threshold(
            self.target_sparsity)
        masks = self.pruning.global_masks(self.target_sparsity)
        self._switch_to_finetune(runner, completed, masks)
        runner.logger.info(
            f'OneShotMagnitudePruningHook: pruned to '
            f'{100 * self.sparsity:.3f}% after {completed} '
            f'{self.unit_name}s (threshold {threshold:.4g}); fine-tuning '
            'under the fixed mask')
        self._plot_masks(runner, 'prune', magnitudes, threshold)


@HOOKS.register_module()
class GradualMagnitudePruningHook(BaseMaskedPruningHook):
    """Gradual magnitude pruning (GMP) with the cubic schedule.

    Zhu & Gupta, "To prune, or not to prune: exploring the efficacy of
    pruning for model compression", 2017 (https://arxiv.org/abs/1710.01878)::

        s_t = s_f + (s_i − s_f) · (1 − (t − t_0) / (t_end − t_0))³

    At ``t = begin, begin + interval, ...`` and at ``end`` the smallest
    ``s_t`` fraction of all prunable weights (one global threshold; the paper
    prunes per layer) is masked; masks only grow. Between pruning steps and
    after ``end`` the model trains under the mask.

    Args:
        target_sparsity (float): Final sparsity s_f in (0, 1).
        begin (int): t_0, completed units at the first pruning step.
        end (int): t_end, completed units at the last pruning step.
        interval (int): Units between pruning steps. Defaults to 1.
        initial_sparsity (float): s_i in [0, target_sparsity).
            Defaults to 0.
        by_epoch (bool): Units are epochs (True) or iterations.
            Defaults to True.
        **kwargs: ``exclude``, ``prune_only``, ``include_frozen``,
            ``min_layer_density``, ``warn_layer_sparsity``,
            ``finetune_lr_milestones`` (counted from
            ``end``), ``finetune_lr_gamma``, ``reset_optimizer`` (at ``end``;
            defaults to False here), ``plot``, ``plot_dir`` of
            :class:`BaseMaskedPruningHook`.
    """

    state_key = 'gmp_pruning_state'
    plot_prefix = 'gmp'

    def __init__(self,
                 target_sparsity: float,
                 begin: int,
                 end: int,
                 interval: int = 1,
                 initial_sparsity: float = 0.0,
                 by_epoch: bool = True,
                 reset_optimizer: bool = False,
                 **kwargs) -> None:
        super().__init__(
            by_epoch=by_epoch, reset_optimizer=reset_optimizer, **kwargs)
        with named_errors(type(self).__name__):
            self.target_sparsity = check_sparsity(target_sparsity)
            check_int('begin', begin, 0)
            check_int('interval', interval, 1)
            if isinstance(end, bool) or not isinstance(end, int) \
                    or end <= begin:
                raise ValueError(f'end must be an int > begin ({begin}), '
                                 f'got {end!r}')
            if not 0.0 <= float(initial_sparsity) < self.target_sparsity:
                raise ValueError('initial_sparsity must be in [0, '
                                 f'target_sparsity={self.target_sparsity}), '
                                 f'got {initial_sparsity}')
        self.begin = begin
        self.end = end
        self.interval = interval
        self.initial_sparsity = float(initial_sparsity)
        self.current_sparsity: Optional[float] = None

    def _check_run(self, runner) -> None:
        total = self._max_units(runner)
        if self.end > total:
            raise ValueError(
                f'GradualMagnitudePruningHook: end ({self.end}) exceeds the '
                f'run ({total} {self.unit_name}s)')

    def after_unit(self, runner, completed: int) -> None:
        sparsity = gmp_step_sparsity(completed, self.begin, self.end,
                                     self.interval, self.target_sparsity,
                                     self.initial_sparsity)
        if sparsity is None:
            return
        final = completed == self.end
        if final:  # the weights before the final mask, for the plot
            magnitudes, threshold = self.pruning.magnitudes_and_threshold(
                sparsity)
        masks = self.pruning.shrunk_masks(sparsity)
        if final:
            self._switch_to_finetune(runner, completed, masks)
        else:
            self.pruning.install(masks, self._optimizers(runner), reset=False)
        self.current_sparsity = self.sparsity
        suffix = ', final mask fixed' if final else ''
        runner.logger.info(
            f'GradualMagnitudePruningHook: {self.unit_name} {completed}: '
            f'sparsity {100 * self.sparsity:.3f}% (schedule '
            f'{100 * sparsity:.3f}%){suffix}')
        if final:
            self._plot_masks(runner, 'final', magnitudes, threshold)
