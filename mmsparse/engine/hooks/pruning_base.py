"""Shared lifecycle of the unstructured pruning hooks (ART, one-shot, GMP).

Holds no algorithm: it keeps the boolean keep-masks of the prunable weights,
trains under them (gradients masked in backward, weights and optimizer state
masked after every step, no regrowth), applies an optional step decay of the
learning rate relative to the switch to fine-tuning, writes the masks and
the global random streams into the checkpoint and restores them on resume,
guards against collapsed layers (default exclusions for ViT models, an
optional per-layer density floor, a warning naming every layer pruned above a
threshold).
"""
import contextlib
import copy
import math
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.dist import broadcast, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict
from mmengine.runner import IterBasedTrainLoop

from mmsparse.art import (DEFAULT_EXCLUDE, MaskApplier, flat_magnitudes,
                          global_magnitude_masks, layers_above, mask_sparsity,
                          num_pruned, prunable_weights, step_decay_factor)
from mmsparse.utils.rng_state import (RNGRestoringIterator, get_rng_state,
                                      set_rng_state)

#: Top-level checkpoint key of the global random streams.
RNG_STATE_KEY = 'rng_state'


@contextlib.contextmanager
def named_errors(owner: str):
    """Prefix a ``ValueError``/``TypeError`` raised inside with ``owner: ``
    (construction errors name the class that raised them)."""
    try:
        yield
    except (ValueError, TypeError) as err:
        if str(err).startswith(f'{owner}:'):
            raise
        raise type(err)(f'{owner}: {err}') from err


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
            ``[]`` makes every Conv/Linear weight prunable.
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
                 include_frozen: bool = False,
                 min_layer_density: float = 0.0,
                 warn_layer_sparsity: Optional[float] = 0.99,
                 finetune_lr_milestones: Sequence[int] = (),
                 finetune_lr_gamma: float = 0.1,
                 reset_optimizer: bool = True,
                 plot: bool = True,
                 plot_dir: str = 'plots') -> None:
        with named_errors(type(self).__name__):
            self._init_base(by_epoch, exclude, include_frozen,
                            min_layer_density, warn_layer_sparsity,
                            finetune_lr_milestones, finetune_lr_gamma)
        self.reset_optimizer = bool(reset_optimizer)
        self.plot = bool(plot)
        self.plot_dir = plot_dir

        self.masks: Optional[Dict[str, torch.Tensor]] = None
        self.switch_unit: Optional[int] = None
        self.base_lrs: Optional[List[List[float]]] = None
        self._weights: Optional[Dict[str, torch.nn.Parameter]] = None
        self._grad_handles: list = []
        self._loaded_state: Optional[dict] = None
        self._loaded_rng: Optional[dict] = None
        self._pending_rng: Optional[dict] = None
        self._applier: Optional[MaskApplier] = None
        self._sparsity_cache: Optional[float] = None

    def _init_base(self, by_epoch, exclude, include_frozen,
                   min_layer_density, warn_layer_sparsity,
                   finetune_lr_milestones, finetune_lr_gamma) -> None:
        if not isinstance(by_epoch, bool):
            raise TypeError(f'by_epoch must be a bool, got {by_epoch!r}')
        if exclude is not None and (isinstance(exclude, str) or not all(
                isinstance(p, str) for p in exclude)):
            raise TypeError('exclude must be a list of regular expressions, '
                            f'got {exclude!r}')
        milestones = list(finetune_lr_milestones or ())
        if not all(isinstance(m, int) and m > 0 for m in milestones):
            raise ValueError('finetune_lr_milestones must be positive ints, '
                             f'got {finetune_lr_milestones!r}')
        if not 0.0 < float(finetune_lr_gamma) <= 1.0:
            raise ValueError('finetune_lr_gamma must be in (0, 1], got '
                             f'{finetune_lr_gamma}')
        if not (isinstance(min_layer_density, (int, float))
                and 0.0 <= min_layer_density < 1.0):
            raise ValueError('min_layer_density must be in [0, 1), got '
                             f'{min_layer_density!r}')
        if warn_layer_sparsity is not None and not (
                isinstance(warn_layer_sparsity, (int, float))
                and 0.0 < warn_layer_sparsity <= 1.0):
            raise ValueError('warn_layer_sparsity must be in (0, 1] or None, '
                             f'got {warn_layer_sparsity!r}')
        self.by_epoch = by_epoch
        self.exclude = list(DEFAULT_EXCLUDE if exclude is None else exclude)
        self.include_frozen = bool(include_frozen)
        self.min_layer_density = float(min_layer_density)
        self.warn_layer_sparsity = warn_layer_sparsity
        self.finetune_lr_milestones = sorted(milestones)
        self.finetune_lr_gamma = float(finetune_lr_gamma)

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

    @property
    def sparsity(self) -> float:
        """Sparsity of the current masks (0 without masks; computed once per
        mask set, no per-iteration host syncs)."""
        if self.masks is None:
            return 0.0
        if self._sparsity_cache is None:
            self._sparsity_cache = mask_sparsity(self.masks)[0]
        return self._sparsity_cache

    def _work_path(self, runner, name: str) -> str:
        return osp.join(runner.work_dir, self.plot_dir,
                        f'{self.plot_prefix}_{name}.png')

    # -------------------------------------------------------- lifecycle
    def before_train(self, runner) -> None:
        """Check the run, collect the prunable weights, restore state."""
        loop = runner.train_loop
        if self.by_epoch and isinstance(loop, IterBasedTrainLoop):
            raise ValueError(
                f'{type(self).__name__}: by_epoch=True, but the run is '
                'iteration-based (IterBasedTrainLoop); set by_epoch=False '
                'and give the counts in iterations')
        model = self._model(runner)
        skipped: Dict[str, int] = {}
        self._weights = prunable_weights(model, self.exclude,
                                         self.include_frozen, skipped)
        if not self._weights:
            raise ValueError(
                f'{type(self).__name__}: the model {type(model).__name__} has '
                'no prunable layers (nn.Conv*, nn.Linear, '
                f'nn.MultiheadAttention) left after exclude={self.exclude}, '
                f'include_frozen={self.include_frozen}')
        hint = '' if self.include_frozen else \
            '; include_frozen=True prunes them'
        runner.logger.info(
            f'{type(self).__name__}: {len(self._weights)} prunable tensors '
            f'with {sum(w.numel() for w in self._weights.values())} weights; '
            f'left out: {skipped["excluded"]} weights matching exclude, '
            f'{skipped["frozen"]} frozen (requires_grad=False{hint})')
        if self.finetune_lr_milestones and runner.param_schedulers:
            raise ValueError(
                f'{type(self).__name__}: finetune_lr_milestones sets the '
                'learning rate itself; remove param_scheduler from the '
                'config or set finetune_lr_milestones=()')
        self._check_run(runner)
        self._check_floor()
        self._restore(runner)
        self._restore_rng(runner)
        self._register_grad_masks()
        if self.masks is not None:
            self._set_masks(runner, self.masks, reset=False)
        if not self.by_epoch:
            self._apply_finetune_lr(runner, runner.iter)

    def _check_run(self, runner) -> None:
        """Validate the hook against the run (subclasses)."""

    def _restore_rng(self, runner) -> None:
        """Continue the saved random streams: right before the first batch
        (epoch-based loops draw it after ``before_train_epoch``; the
        iteration-based loop first replays ``runner.iter`` batches, which
        must not consume the stream)."""
        state, self._loaded_rng = self._loaded_rng, None
        if state is None or runner.iter == 0:
            return
        loop = runner.train_loop
        if isinstance(loop, IterBasedTrainLoop):
            loop.dataloader_iterator = RNGRestoringIterator(
                loop.dataloader_iterator, runner.iter, state)
        else:
            self._pending_rng = state

    def _restore(self, runner) -> None:
        state, self._loaded_state = self._loaded_state, None
        if state is None:
            return
        if runner.iter == 0:
            print_log(
                f'{type(self).__name__}: the loaded checkpoint holds pruning '
                'state but training starts at iteration 0 (load_from, not '
                'resume); the state is ignored and pruning starts afresh',
                logger='current')
            return
        self.load_state_dict(state)

    def before_train_epoch(self, runner) -> None:
        state = self._pending_rng
        if state is not None:
            self._pending_rng = None
            set_rng_state(state)
        if self.by_epoch:
            self._apply_finetune_lr(runner, runner.epoch)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        """Re-apply the masks after the optimizer step; then, for
        iteration-based counting, the unit logic."""
        if self.masks is not None:
            self._enforce_masks(runner)
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
        for handle in self._grad_handles:
            handle.remove()
        self._grad_handles = []
        if self.masks is not None:
            runner.logger.info(
                f'{type(self).__name__}: final sparsity '
                f'{100 * self.sparsity:.2f}% of '
                f'{sum(m.numel() for m in self.masks.values())} prunable '
                'weights')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[self.state_key] = self.state_dict()
        # rank 0 saves (mmengine's save_checkpoint is master-only): its
        # streams; other ranks continue from the seed on resume
        checkpoint[RNG_STATE_KEY] = get_rng_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if checkpoint.get(RNG_STATE_KEY) is not None and is_main_process():
            self._loaded_rng = checkpoint[RNG_STATE_KEY]
        state = checkpoint.get(self.state_key)
        if state is None:
            print_log(
                f'{type(self).__name__}: no "{self.state_key}" in the '
                'checkpoint; starting without pruning state',
                logger='current')
            return
        # applied in before_train, once it is known whether this resumes
        self._loaded_state = _to_cpu(state)

    # ------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """Everything a resume needs (plain tensors and Python values)."""
        return dict(
            masks=None if self.masks is None else OrderedDict(
                (k, v.detach().cpu().clone()) for k, v in self.masks.items()),
            switch_unit=self.switch_unit,
            base_lrs=copy.deepcopy(self.base_lrs))

    def load_state_dict(self, state: dict) -> None:
        self.masks = state['masks']
        self._applier = None
        self._sparsity_cache = None
        self.switch_unit = state['switch_unit']
        self.base_lrs = state['base_lrs']

    # ---------------------------------------------------------- masking
    def _register_grad_masks(self) -> None:
        for handle in self._grad_handles:
            handle.remove()
        self._grad_handles = []
        for index, weight in enumerate(self._weights.values()):
            if weight.requires_grad:
                self._grad_handles.append(
                    weight.register_hook(self._grad_mask_fn(index)))

    def _grad_mask_fn(self, index: int):

        def mask_grad(grad: torch.Tensor) -> torch.Tensor:
            # runs before accumulation and before DDP's all-reduce
            if self._applier is None:
                return grad
            return grad * self._applier.factors[index]

        return mask_grad

    @torch.no_grad()
    def _enforce_masks(self, runner) -> None:
        if self._applier is None:
            self._applier = MaskApplier(self._weights, self.masks)
        self._applier.weights_()
        self._applier.optimizer_state_(self._optimizers(runner))

    def _check_floor(self) -> None:
        """The density floor must leave room for the target sparsity."""
        target = getattr(self, 'target_sparsity', None)
        if not self.min_layer_density or target is None:
            return
        numels = [w.numel() for w in self._weights.values()]
        floor = sum(
            min(math.ceil(self.min_layer_density * n), n) for n in numels)
        left = sum(numels) - num_pruned(sum(numels), target)
        if floor > left:
            raise ValueError(
                f'{type(self).__name__}: min_layer_density='
                f'{self.min_layer_density} keeps {floor} weights, more than '
                f'the {left} that target_sparsity {target} leaves')

    def _global_masks(self, sparsity: float) -> Dict[str, torch.Tensor]:
        """Global magnitude masks with the hook's per-layer floor."""
        try:
            return global_magnitude_masks(self._weights, sparsity,
                                          self.min_layer_density)
        except ValueError as err:
            raise ValueError(f'{type(self).__name__}: {err}') from err

    def _warn_collapsed_layers(self, runner) -> None:
        """Warn about every layer pruned above ``warn_layer_sparsity``."""
        if self.warn_layer_sparsity is None:
            return
        above = layers_above(self.masks, self.warn_layer_sparsity)
        if above:
            listed = ', '.join(f'{n} ({100 * v:.2f}%)'
                               for n, v in above.items())
            runner.logger.warning(
                f'{type(self).__name__}: {len(above)} layer(s) pruned above '
                f'{100 * self.warn_layer_sparsity:g}%: {listed}. Exclude them '
                '(exclude=[...]) or set min_layer_density.')

    def _set_masks(self, runner, masks: Dict[str, torch.Tensor],
                   reset: bool) -> None:
        """Install masks: identical on all ranks (broadcast from rank 0),
        applied to weights and optimizer state; optionally clear the
        optimizer state."""
        if set(masks) != set(self._weights):
            raise ValueError(
                f'{type(self).__name__}: the masks do not match the prunable '
                f'weights of the model (missing '
                f'{sorted(set(self._weights) - set(masks))[:5]}, unexpected '
                f'{sorted(set(masks) - set(self._weights))[:5]})')
        synced = OrderedDict()
        for name, weight in self._weights.items():
            mask = masks[name].to(device=weight.device, dtype=torch.uint8)
            if mask.shape != weight.shape:
                raise ValueError(f'mask of {name} has shape '
                                 f'{tuple(mask.shape)}, the weight '
                                 f'{tuple(weight.shape)}')
            broadcast(mask, src=0)
            synced[name] = mask.bool()
        self.masks = synced
        self._applier = None
        self._sparsity_cache = None
        if reset:
            for optimizer in self._optimizers(runner):
                optimizer.state.clear()
        self._enforce_masks(runner)

    # --------------------------------------------------------------- lr
    def _record_base_lrs(self, runner) -> None:
        self.base_lrs = [[group['lr'] for group in opt.param_groups]
                         for opt in self._optimizers(runner)]

    def _apply_finetune_lr(self, runner, unit: int) -> None:
        """Set the lr of the unit with 0-based index ``unit``."""
        if (not self.finetune_lr_milestones or self.switch_unit is None
                or self.base_lrs is None):
            return
        elapsed = unit - self.switch_unit
        factor = step_decay_factor(elapsed, self.finetune_lr_milestones,
                                   self.finetune_lr_gamma)
        for opt, lrs in zip(self._optimizers(runner), self.base_lrs):
            for group, lr in zip(opt.param_groups, lrs):
                group['lr'] = lr * factor

    # ------------------------------------------------------------ plots
    def _plot_masks(self, runner, tag: str,
                    magnitudes: Optional[torch.Tensor] = None,
                    threshold: Optional[float] = None) -> None:
        """Per-layer sparsity and (optionally) the weight-magnitude
        histogram, on rank 0."""
        if not (self.plot and is_main_process()):
            return
        from mmsparse.utils.pruning_plots import (plot_layer_sparsity,
                                                  plot_weight_histogram)
        _, per_layer = mask_sparsity(self.masks)
        plot_layer_sparsity(
            per_layer,
            self._work_path(runner, f'layer_sparsity_{tag}'),
            title=f'per-layer sparsity ({tag}, global '
            f'{100 * self.sparsity:.2f}%)')
        if magnitudes is not None:
            plot_weight_histogram(
                magnitudes.cpu().numpy(),
                self._work_path(runner, f'weight_hist_{tag}'),
                threshold=threshold,
                title=f'|w| at {tag}')

    def _magnitudes(self) -> torch.Tensor:
        return flat_magnitudes(self._weights.values())


def _to_cpu(obj):
    """Recursively move tensors to CPU (loaded state may be on a GPU)."""
    if torch.is_tensor(obj):
        return obj.cpu()
    if isinstance(obj, dict):
        return type(obj)((k, _to_cpu(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj
