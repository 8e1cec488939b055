"""P3BHook: Pruning by Block Benefit in any mmpretrain ViT config.

Glandorf & Rosenhahn, "Pruning by Block Benefit: Exploring the Properties of
Vision Transformer Blocks during Domain Adaptation", ICCV 2025 workshops,
https://arxiv.org/abs/2506.23675.
"""
import os.path as osp
from typing import Optional

import torch
from mmengine import dist
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmsparse.engine.p3b_run_export import (check_exportable, export_folder,
                                            export_slim_model)
from mmsparse.p3b import (P3BPruner, check_keep_ratio, check_num_classes,
                          check_pruner_settings, format_update,
                          non_block_params, save_history,
                          schedule_in_iterations, vit_view)
from mmsparse.p3b.checks import check_task, probe_num_classes
from mmsparse.p3b.schedule import check_schedule_args
from mmsparse.p3b.state import restore_loaded_state
from mmsparse.p3b.statistics import loss_scale
from mmsparse.p3b.targets import TargetCapture
from mmsparse.registry import HOOKS
from mmsparse.utils.p3b_plots import plot_p3b_run
from mmsparse.utils.settings import check_settings, with_defaults

CKPT_KEY = 'p3b'
#: P3BPruner arguments the hook fills itself.
_DERIVED = ('model', 'num_classes', 'keep_ratio', 'start', 'sparse', 'final',
            'interval', 'non_block_params', 'all_reduce', 'warn')


def _all_reduce(tensor: torch.Tensor, op: str) -> None:
    dist.all_reduce(tensor, op=op)


@HOOKS.register_module()
class P3BHook(Hook):
    r"""Prune a ViT classifier with P3B while it trains, then slim it.

    The algorithm is :class:`~mmsparse.p3b.P3BPruner` (plain PyTorch):
    structured gates on every attention / MLP sub-block; probe heads on
    detached features measure each sub-block's benefit
    :math:`\Delta\Psi_i = CE(\Psi_i(x_{i-1})) - CE(\Psi_i(x_i))`; every
    ``update_interval`` iterations the benefits set the block keep ratios
    (on the global parameter budget, ramped from ``prune_start`` to
    ``prune_sparse``) and Taylor scores :math:`(m \odot \partial L /
    \partial m)^2` the kept elements inside each block; masks are rebuilt
    from scratch (pruned blocks can come back) and hard at
    ``prune_finalize``. This hook builds it on the runner's model, drives
    it every iteration, logs every update and, at ``prune_finalize``, saves
    the model sliced into a registered slim backbone
    (``SlimVisionTransformer`` / ``SlimViTPyramid``) with a config that
    rebuilds it and a fine-tune config that inherits the run's config
    (:mod:`mmsparse.engine.p3b_run_export`).

    The P3B state (gates, probes, scores, EMA, history) is saved under the
    checkpoint key ``'p3b'``; the task model's state dict keys do not
    change, so dense checkpoints load strictly. ``resume`` continues the
    pruning run of the checkpoint, ``load_from`` takes its weights only.
    Probe and gate gradients and block statistics are all-reduced, so masks
    are identical on every rank. Training after ``prune_finalize`` goes on
    with the hard-masked model and refreshes the slim weights at the end.

    Args:
        keep_ratio (float): Fraction of the model's parameters to keep, in
            (0, 1] (0.5 / 0.25 = the paper's 50 % / 75 % pruning).
            Defaults to 0.5.
        prune_start (int): Epoch (or iteration) statistics and pruning
            start. Defaults to 5.
        prune_sparse (int): Epoch the goal keep ratio is reached.
            Defaults to 25.
        prune_finalize (int, optional): Epoch masks are hard and the model
            is sliced; None = end of training. Defaults to 50.
        by_epoch (bool): The three above are epochs (else iterations).
            Defaults to True.
        update_interval (int): Iterations between mask updates (reference:
            ~3 per epoch). Defaults to 1000.
        count_non_block (bool): Count the dense parameters outside the
            blocks (embeddings, final norm, head) in the budget.
            Defaults to True.
        num_classes (int, optional): Classes of the probes; None reads
            ``model.head.num_classes``. Defaults to None.
        export_dir (str): Folder under the work dir for the slim checkpoint,
            configs, history and plots. Defaults to 'p3b'.
        verify_slim (bool): Check at export that the slim backbone's output
            equals the masked one on a random batch. Defaults to True.
        **pruner_settings: Keyword arguments of
            :class:`~mmsparse.p3b.P3BPruner`, passed through unchanged with
            its defaults: ``gate_scales``, ``ema_momentum``, ``tau_max``,
            ``tau_min``, ``alpha``, ``benefit_scale``, ``probe_lr``,
            ``probe_weight_decay``, ``probe_convs``, ``probe`` ('reference'
            or 'cheap', see the cost table in ``projects/p3b/README.md``),
            ``probe_width``, ``probe_fraction``, ``probe_window``,
            ``block_budget`` ('benefit', 'benefit-first', 'uniform'),
            ``element_score`` ('taylor', 'magnitude'), ``seed`` and
            ``width_multiple`` (kept widths rounded to a multiple of it,
            8 by default; 1 = no rounding, as the reference code). The hook
            fills the model, the keep ratio, the schedule in iterations and
            the budget itself.
    """

    priority = 'NORMAL'

    def __init__(self,
                 keep_ratio: float = 0.5,
                 prune_start: int = 5,
                 prune_sparse: int = 25,
                 prune_finalize: Optional[int] = 50,
                 by_epoch: bool = True,
                 update_interval: int = 1000,
                 count_non_block: bool = True,
                 num_classes: Optional[int] = None,
                 export_dir: str = 'p3b',
                 verify_slim: bool = True,
                 **pruner_settings) -> None:
        owner = type(self).__name__
        check_settings(P3BPruner, pruner_settings, owner, _DERIVED)
        check_keep_ratio(keep_ratio, owner)
        check_schedule_args(prune_start, prune_sparse, prune_finalize,
                            update_interval, by_epoch, owner)
        check_pruner_settings(owner, update_interval, **with_defaults(
            P3BPruner, pruner_settings, _DERIVED))
        check_num_classes(num_classes, owner)
        self.keep_ratio = keep_ratio
        self.schedule = (prune_start, prune_sparse, prune_finalize)
        self.by_epoch = by_epoch
        self.update_interval = update_interval
        self.count_non_block = count_non_block
        self.num_classes = num_classes
        self.export_dir = export_dir
        self.verify_slim = verify_slim
        self.pruner_kwargs = dict(pruner_settings)
        self.pruner: Optional[P3BPruner] = None
        self._loaded: Optional[dict] = None  # P3B state of a loaded ckpt
        self._target_capture = TargetCapture()  # labels of the train batch
        self._grad_scale = None
        self.iters_per_epoch = 1

    # ----------------------------------------------------------- set-up
    @staticmethod
    def _model(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def before_train(self, runner) -> None:
        """Check the model and the schedule, attach gates and probes."""
        model = self._model(runner)
        check_task(model, lambda: runner.train_dataloader.dataset[0],
                   runner.logger.warning, 'P3BHook')
        try:
            view = vit_view(model)  # TypeError naming what it found
        except TypeError as err:
            raise TypeError(f'P3BHook: {err}') from err
        check_exportable(view.backbone, runner.cfg.model, 'P3BHook')
        num_classes = probe_num_classes(model, self.num_classes, 'P3BHook')
        self.iters_per_epoch = len(runner.train_dataloader) \
            if self.by_epoch else 1
        start, sparse, final = schedule_in_iterations(
            *self.schedule, self.update_interval, self.by_epoch,
            self.iters_per_epoch,
            runner.max_epochs if self.by_epoch else runner.max_iters,
            'P3BHook')
        nb = non_block_params(model) if self.count_non_block else 0
        self.pruner = P3BPruner(
            model, int(num_classes), self.keep_ratio, start, sparse, final,
            self.update_interval, non_block_params=nb,
            all_reduce=_all_reduce, warn=runner.logger.warning,
            **self.pruner_kwargs)
        self._restore_loaded(runner)
        preprocessor = getattr(model, 'data_preprocessor', None)
        if preprocessor is not None:
            self._target_capture.attach(preprocessor)
        runner.logger.info(
            f'P3BHook: {len(view.blocks)} blocks ({view.style} style), keep '
            f'ratio {self.keep_ratio}, iterations start/sparse/final = '
            f'{start}/{sparse}/{final}, mask update every '
            f'{self.update_interval} iterations, non-block parameters '
            f'{nb:,} counted')

    # ------------------------------------------------------- train loop
    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        self._target_capture.start()
        self._grad_scale = self._loss_scale(runner)
        self.pruner.before_iter(runner.iter)

    @staticmethod
    def _loss_scale(runner):
        """The loss scale of this iteration's backward pass (None without
        mixed precision), read before the optimizer step."""
        return loss_scale(getattr(runner.optim_wrapper, 'loss_scaler', None))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        targets = self._target_capture.stop(
            required=self.pruner.gated.capture, owner='P3BHook')
        record = self.pruner.after_iter(runner.iter, targets,
                                        self._grad_scale)
        if record is None:
            return
        runner.message_hub.update_scalar('train/p3b_keep_ratio',
                                         record['global_keep'])
        runner.logger.info(format_update(record, self.keep_ratio))
        if dist.is_main_process():
            save_history(osp.join(self._out_dir(runner), 'history.json'),
                         self.pruner.history, self.iters_per_epoch,
                         self.pruner.dense_params,
                         self.pruner.non_block_params)
        if record['finalized']:
            runner.logger.info('P3BHook: masks are hard; exporting the slim '
                               'model')
            self._export(runner)

    def after_train(self, runner) -> None:
        """Plot; refresh the slim weights if training went on after the
        finalize step."""
        if self.pruner is None:
            return
        if self.pruner.finalized and runner.iter > self.pruner.final:
            self._export(runner, configs=False)
        if self.pruner.history and dist.is_main_process():
            plot_p3b_run(self._out_dir(runner), self.pruner.history,
                         self.pruner.dense_params.tolist(),
                         self.pruner.kept_params().tolist(),
                         self.iters_per_epoch)
        self._target_capture.remove()

    # ------------------------------------------------------- checkpoint
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.pruner is not None:
            checkpoint[CKPT_KEY] = self.pruner.get_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep the P3B state of the checkpoint until the run shows whether
        it was resumed (:meth:`_restore_loaded`).

        ``Runner.load_checkpoint`` (``load_from``) and ``Runner.resume``
        call this hook alike, and the runner's resume flag says nothing
        about a direct ``runner.resume(path)``; what tells them apart is
        public: ``resume`` continues the train loop at the checkpoint's
        iteration (``runner.iter``), ``load_from`` starts at 0.
        """
        self._loaded = dict(state=checkpoint.get(CKPT_KEY),
                            iter=checkpoint.get('meta', {}).get('iter'))

    def _restore_loaded(self, runner) -> None:
        """On resume restore the P3B state (the same keep ratio and schedule
        only); ``load_from`` loads the weights only."""
        loaded, self._loaded = self._loaded, None
        if loaded is not None:
            restore_loaded_state(self.pruner, loaded['state'], loaded['iter'],
                                 runner.iter, runner.logger.info,
                                 runner.logger.warning, 'P3BHook')

    def before_val(self, runner) -> None:
        """A checkpoint loaded after training (``runner.resume(path)``, then
        ``runner.val()``) takes effect before the evaluation."""
        if self.pruner is not None:
            self._restore_loaded(runner)

    before_test = before_val

    # ---------------------------------------------------------- output
    def _out_dir(self, runner) -> str:
        return export_folder(runner.work_dir, self.export_dir)

    def _export(self, runner, configs: bool = True) -> None:
        """Save the slim checkpoint (and its configs) on rank 0."""
        if dist.is_main_process():
            export_slim_model(runner, self._model(runner), self.pruner,
                              self._out_dir(runner), configs,
                              self.verify_slim, ('P3BHook', P3BHook))
