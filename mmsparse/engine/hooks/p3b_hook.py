"""P3BHook: Pruning by Block Benefit in any mmpretrain ViT config.

Glandorf & Rosenhahn, "Pruning by Block Benefit: Exploring the Properties of
Vision Transformer Blocks during Domain Adaptation", ICCV 2025 workshops,
https://arxiv.org/abs/2506.23675.
"""
import copy
import json
import os
import os.path as osp
import pprint
from typing import Dict, Optional

import torch
from mmengine import dist
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner.checkpoint import save_checkpoint

from mmsparse.models.backbones.slim_vit import SLIM_BACKBONES
from mmsparse.p3b import (BLOCK_BUDGETS, ELEMENT_SCORES, P3BPruner,
                          check_keep_ratio, check_probe_args, check_schedule,
                          find_backbone, non_block_params, vit_view)
from mmsparse.registry import HOOKS, MODELS
from mmsparse.utils.p3b_plots import (plot_benefit_history,
                                      plot_keep_ratio_history,
                                      plot_param_allocation)

CKPT_KEY = 'p3b'

#: What to do with a model P3B cannot prune directly.
PIPELINE_HINT = (
    'P3B measures block benefit with classification probes, so it runs on '
    'an image classifier with class labels. To prune the ViT of a video / '
    'detection model (e.g. a VPP-wrapped Mask2Former): run P3BHook on a '
    'classification model with the same ViT, take the slim ViT it exports '
    '(<work_dir>/p3b/slim_model.py + slim_model.pth) and use it as the '
    "backbone of that model: type='P3BViTPyramid', export='<work_dir>/p3b' "
    '(wrapped by VPPBackbone for VPP; see configs/composed/)')


def _all_reduce(tensor: torch.Tensor, op: str) -> None:
    dist.all_reduce(tensor, op=op)


@HOOKS.register_module()
class P3BHook(Hook):
    r"""Prune a ViT classifier with P3B while it trains, then slim it.

    Each attention and MLP sub-block gets structured gates (attention
    input / per-head width / output, MLP input / hidden / output). Probe
    heads on detached features measure each sub-block's benefit
    :math:`\Delta\Psi_i = CE(\Psi_i(x_{i-1})) - CE(\Psi_i(x_i))`; every
    ``update_interval`` iterations the benefits set the block keep ratios
    (meeting the global parameter budget exactly, linearly ramped from
    ``prune_start`` to ``prune_sparse``) and the Taylor scores
    :math:`(m \odot \partial L / \partial m)^2` pick the kept elements
    inside each block; all masks are rebuilt from scratch, so pruned blocks
    can come back. Soft masks anneal to hard masks at ``prune_finalize``,
    where the model is sliced into a registered slim backbone
    (``SlimVisionTransformer`` / ``SlimViTPyramid``) and saved with a config
    that rebuilds it and a fine-tune config that inherits the run's config.

    Gates are applied by forward hooks and saved under the checkpoint key
    ``'p3b'`` (with probes, scores, EMA and history), so the task model's
    state dict keys do not change and dense checkpoints load strictly. The
    probes train with their own AdamW optimizer (not the runner's); their
    gradients, the gate gradients and the block statistics are all-reduced,
    so probes and masks are identical on every rank. After
    ``prune_finalize`` training (if any) continues on the hard-masked model
    and the slim export is refreshed at the end.

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
        gate_scales (dict, optional): Factor on the normalised Taylor rank
            per gate; None = reference ``attn_out=1.5, mlp_hidden=0.75,
            mlp_out=1.5``. Defaults to None.
        ema_momentum (float): Weight of the new block importance in its
            EMA. Defaults to 0.2.
        tau_max (float): Soft-mask temperature until ``prune_sparse``.
            Defaults to 0.1.
        tau_min (float): Temperature at ``prune_finalize`` (the final masks
            are hard regardless). Defaults to 0.
        alpha (float): Weight of the cls-token benefit (vs patch).
            Defaults to 0.5.
        benefit_scale (float): Range of the smooth benefit clamp.
            Defaults to 10.
        probe_lr (float): Learning rate of the probe heads. Defaults to 5e-4.
        probe_weight_decay (float): Weight decay of the probe heads.
            Defaults to 0.05.
        probe_convs (int, optional): Conv stages of each patch probe; None =
            2 (reference) / 1 (cheap). Defaults to None.
        probe (str): Probe design: 'reference' (the paper's probes: per
            sub-block a linear cls head and 2 x Conv3x3 D->D patch head on
            its input and output) or 'cheap' (one narrow probe per position
            of the residual stream, shared classifiers; see
            ``mmsparse.p3b.probes.CheapProbeBank`` and the cost table in
            ``projects/p3b/README.md``). Defaults to 'reference'.
        probe_width (int): Width of the cheap probes. Defaults to 32.
        probe_fraction (float): Fraction of each batch the probes see.
            Defaults to 1.
        probe_window (int, optional): Train the probes only in the last
            ``probe_window`` iterations before each mask update; None =
            every iteration. Defaults to None.
        num_classes (int, optional): Classes of the probes; None reads
            ``model.head.num_classes``. Defaults to None.
        block_budget (str): 'benefit' (P3B), 'benefit-first' (ablation:
            the first update's budget is kept, no reactivation) or
            'uniform' (ablation: equal keep ratio per block). Defaults to
            'benefit'.
        element_score (str): 'taylor' (P3B) or 'magnitude' (ablation:
            weight norms). Defaults to 'taylor'.
        export_dir (str): Folder under the work dir for the slim checkpoint,
            configs, history and plots. Defaults to 'p3b'.
        verify_slim (bool): Check at export that the slim backbone's output
            equals the masked one on a random batch. Defaults to True.
        seed (int): Seed of the probe initialisation. Defaults to 0.
        width_multiple (int): Round every kept width (attention input /
            head / output, MLP input / hidden / output) of the final masks
            to a multiple of this: odd GEMM sizes run at half speed on CPU
            (MKL) and miss tensor-core shapes on GPU. 1 = no rounding (as
            the reference). Defaults to 8.
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
                 gate_scales: Optional[Dict[str, float]] = None,
                 ema_momentum: float = 0.2,
                 tau_max: float = 0.1,
                 tau_min: float = 0.0,
                 alpha: float = 0.5,
                 benefit_scale: float = 10.0,
                 probe_lr: float = 5e-4,
                 probe_weight_decay: float = 0.05,
                 probe_convs: Optional[int] = None,
                 probe: str = 'reference',
                 probe_width: int = 32,
                 probe_fraction: float = 1.0,
                 probe_window: Optional[int] = None,
                 num_classes: Optional[int] = None,
                 block_budget: str = 'benefit',
                 element_score: str = 'taylor',
                 export_dir: str = 'p3b',
                 verify_slim: bool = True,
                 seed: int = 0,
                 width_multiple: int = 8) -> None:
        owner = type(self).__name__
        check_keep_ratio(keep_ratio, owner)
        unit = 'epochs' if by_epoch else 'iterations'
        check_schedule(prune_start, prune_sparse,
                       prune_sparse if prune_finalize is None else
                       prune_finalize, update_interval, unit, owner)
        check_probe_args(probe, probe_width, probe_fraction, probe_window,
                         update_interval, owner)
        if prune_finalize is None and prune_sparse == prune_start:
            raise ValueError(f'{owner}: prune_sparse must come after '
                             'prune_start when prune_finalize is None')
        if block_budget not in BLOCK_BUDGETS:
            raise ValueError(f'{owner}: block_budget must be one of '
                             f'{BLOCK_BUDGETS}, got {block_budget!r}')
        if element_score not in ELEMENT_SCORES:
            raise ValueError(f'{owner}: element_score must be one of '
                             f'{ELEMENT_SCORES}, got {element_score!r}')
        if not isinstance(width_multiple, int) or width_multiple < 1:
            raise ValueError(f'{owner}: width_multiple must be an int >= 1, '
                             f'got {width_multiple!r}')
        if num_classes is not None and (not isinstance(num_classes, int)
                                        or num_classes < 2):
            raise ValueError(f'{owner}: num_classes must be an int >= 2 or '
                             f'None, got {num_classes!r}')
        self.keep_ratio = keep_ratio
        self.schedule = (prune_start, prune_sparse, prune_finalize)
        self.by_epoch = by_epoch
        self.update_interval = update_interval
        self.count_non_block = count_non_block
        self.num_classes = num_classes
        self.export_dir = export_dir
        self.verify_slim = verify_slim
        self.pruner_kwargs = dict(
            gate_scales=gate_scales, ema_momentum=ema_momentum,
            tau_max=tau_max, tau_min=tau_min, alpha=alpha,
            benefit_scale=benefit_scale, probe_lr=probe_lr,
            probe_weight_decay=probe_weight_decay, probe_convs=probe_convs,
            probe=probe, probe_width=probe_width,
            probe_fraction=probe_fraction, probe_window=probe_window,
            block_budget=block_budget, element_score=element_score,
            seed=seed, width_multiple=width_multiple)
        self.pruner: Optional[P3BPruner] = None
        self._resume_state: Optional[dict] = None
        self._targets: Optional[torch.Tensor] = None
        self._capture = False
        self._handle = None
        self._grad_scale = None
        self.iters_per_epoch = 1

    # ----------------------------------------------------------- set-up
    @staticmethod
    def _model(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def _iterations(self, runner):
        start, sparse, final = self.schedule
        scale = len(runner.train_dataloader) if self.by_epoch else 1
        self.iters_per_epoch = scale
        unit = 'epochs' if self.by_epoch else 'iterations'
        limit = runner.max_epochs if self.by_epoch else runner.max_iters
        if final is None:
            final = limit
        if final > limit:
            raise ValueError(
                f'P3BHook: prune_finalize={final} {unit} is after the end of '
                f'training ({limit} {unit}); lower prune_finalize or train '
                'longer')
        check_schedule(start, sparse, final, self.update_interval, unit,
                       'P3BHook')
        return start * scale, sparse * scale, final * scale

    @staticmethod
    def _check_task(runner, model) -> None:
        """Fail before training on models P3B cannot prune: a backbone
        that wraps another one (VPP) or training data without class
        labels."""
        backbone = find_backbone(model)
        inner = getattr(backbone, 'backbone', None)
        if isinstance(inner, torch.nn.Module):
            raise TypeError(
                f'P3BHook: cannot prune {type(backbone).__name__} (a '
                f'backbone wrapping {type(inner).__name__}). '
                + PIPELINE_HINT)
        try:
            sample = runner.train_dataloader.dataset[0]
        except Exception as err:  # data the check cannot read: skip it
            runner.logger.warning(f'P3BHook: could not read a training '
                                  f'sample to check its labels ({err!r})')
            return
        samples = sample.get('data_samples') if isinstance(sample,
                                                           dict) else None
        if isinstance(samples, (list, tuple)):
            samples = samples[0] if samples else None
        if samples is not None and hasattr(samples, 'keys') and not (
                'gt_label' in samples or 'gt_score' in samples):
            raise ValueError(
                'P3BHook: the training samples have no class labels '
                f'(gt_label / gt_score; found {type(samples).__name__} with '
                f'{sorted(samples.keys())[:8]}). ' + PIPELINE_HINT)

    def before_train(self, runner) -> None:
        """Check the model and the schedule, attach gates and probes."""
        model = self._model(runner)
        self._check_task(runner, model)
        try:
            view = vit_view(model)  # TypeError naming what it found
        except TypeError as err:
            raise TypeError(f'P3BHook: {err}') from err
        if type(view.backbone) not in SLIM_BACKBONES:
            raise TypeError(
                f'P3BHook: cannot export a slim model for backbone '
                f'{type(view.backbone).__name__}; supported: '
                f'{[c.__name__ for c in SLIM_BACKBONES]}')
        if 'backbone' not in runner.cfg.model:
            raise TypeError('P3BHook: the model config has no `backbone` '
                            f'(type {runner.cfg.model.get("type")!r})')
        num_classes = self.num_classes or getattr(
            getattr(model, 'head', None), 'num_classes', None)
        if num_classes is None:
            raise ValueError('P3BHook: set num_classes; the model has no '
                             '`head.num_classes` to read it from. '
                             + PIPELINE_HINT)
        start, sparse, final = self._iterations(runner)
        nb = non_block_params(model) if self.count_non_block else 0
        self.pruner = P3BPruner(
            model, int(num_classes), self.keep_ratio, start, sparse, final,
            self.update_interval, non_block_params=nb,
            all_reduce=_all_reduce, warn=runner.logger.warning,
            **self.pruner_kwargs)
        if self._resume_state is not None:
            self.pruner.check_state(self._resume_state, 'P3BHook')
            self.pruner.set_state(self._resume_state)
            self._resume_state = None
            runner.logger.info('P3BHook: restored gates, scores, EMA and '
                               'schedule from the checkpoint')
        preprocessor = getattr(model, 'data_preprocessor', None)
        if preprocessor is not None:
            self._handle = preprocessor.register_forward_hook(
                self._grab_targets)
        runner.logger.info(
            f'P3BHook: {len(view.blocks)} blocks ({view.style} style), keep '
            f'ratio {self.keep_ratio}, iterations start/sparse/final = '
            f'{start}/{sparse}/{final}, mask update every '
            f'{self.update_interval} iterations, non-block parameters '
            f'{nb:,} counted')

    def _grab_targets(self, module, args, output) -> None:
        if not self._capture or not isinstance(output, dict):
            return
        samples = output.get('data_samples') or []
        if samples and all('gt_score' in s for s in samples):
            self._targets = torch.stack([s.gt_score for s in samples])
        elif samples and all('gt_label' in s for s in samples):
            self._targets = torch.cat(
                [s.gt_label.flatten()[:1] for s in samples]).long()

    # ------------------------------------------------------- train loop
    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        self._capture = True
        self._targets = None
        self._grad_scale = self._loss_scale(runner)
        self.pruner.before_iter(runner.iter)

    @staticmethod
    def _loss_scale(runner):
        """The loss scale of this iteration's backward pass (mixed
        precision), None without one. A copy: the scaler updates in place
        after the step."""
        scaler = getattr(runner.optim_wrapper, 'loss_scaler', None)
        if scaler is None:
            return None
        scale = getattr(scaler, '_scale', None)
        if isinstance(scale, torch.Tensor):
            return scale.detach().clone()
        get_scale = getattr(scaler, 'get_scale', None)
        return None if get_scale is None else float(get_scale())

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        self._capture = False
        if self.pruner.gated.capture and self._targets is None:
            raise RuntimeError(
                'P3BHook: no class labels (gt_label / gt_score) in the '
                'batch; the probes of P3B need classification targets')
        record = self.pruner.after_iter(runner.iter, self._targets,
                                        self._grad_scale)
        self._targets = None
        if record is None:
            return
        self._log(runner, record)
        if dist.is_main_process():
            self._write_history(runner)
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
            self._plot(runner)
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    # ------------------------------------------------------- checkpoint
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.pruner is not None:
            checkpoint[CKPT_KEY] = self.pruner.get_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """On ``resume`` restore the P3B state (the same keep ratio and
        schedule only); ``load_from`` loads the weights only."""
        state = checkpoint.get(CKPT_KEY)
        if not getattr(runner, '_resume', False):
            if state is not None:
                runner.logger.info(
                    'P3BHook: load_from loads the weights only; the P3B '
                    f'state of that run (keep_ratio {state["keep_ratio"]}) '
                    'is not restored and pruning starts from dense gates '
                    '(use resume=True to continue that run)')
            return
        if state is None:
            runner.logger.warning(
                'P3BHook: the checkpoint has no P3B state; pruning starts '
                'from dense gates')
            return
        if abs(float(state['keep_ratio']) - self.keep_ratio) > 1e-12:
            raise ValueError(
                f'P3BHook: cannot resume: the checkpoint was written with '
                f'keep_ratio={state["keep_ratio"]}, this run has '
                f'keep_ratio={self.keep_ratio}; to start a new pruning run '
                'from its weights, load it with load_from and resume=False')
        if self.pruner is None:
            self._resume_state = state  # the schedule is checked then
        else:
            self.pruner.check_state(state, 'P3BHook')
            self.pruner.set_state(state)

    # ---------------------------------------------------------- logging
    def _log(self, runner, rec: dict) -> None:
        runner.message_hub.update_scalar('train/p3b_keep_ratio',
                                         rec['global_keep'])
        lines = [
            f'P3B update at iter {rec["step"] + 1}: global keep ratio '
            f'{rec["global_keep"]:.4f} (goal {self.keep_ratio}), tau '
            f'{rec["tau"]:.4f}', 'sub-block  goal   target kept   '
            'importance benefit_cls benefit_patch'
        ]
        for j, kept in enumerate(rec['block_keep']):
            name = f'{j // 2:2d}.{"attn" if j % 2 == 0 else "mlp "}'
            cls = rec['benefit_cls'][j] if rec['benefit_cls'] else float('nan')
            pat = rec['benefit_patch'][j] if rec['benefit_patch'] else \
                float('nan')
            lines.append(
                f'{name}    {rec["goal_keep"][j]:.3f}  '
                f'{rec["target_keep"][j]:.3f}  {kept:.3f}  '
                f'{rec["importance"][j]:10.4f} {cls:+11.4f} {pat:+13.4f}')
        runner.logger.info('\n'.join(lines))

    def _out_dir(self, runner) -> str:
        path = osp.join(runner.work_dir, self.export_dir)
        os.makedirs(path, exist_ok=True)
        return path

    def _write_history(self, runner) -> None:
        out = self._out_dir(runner)
        with open(osp.join(out, 'history.json'), 'w') as f:
            json.dump(dict(iters_per_epoch=self.iters_per_epoch,
                           dense_params=self.pruner.dense_params.tolist(),
                           non_block_params=self.pruner.non_block_params,
                           history=self.pruner.history), f)

    # ----------------------------------------------------------- export
    def _plot(self, runner) -> None:
        out = self._out_dir(runner)
        plot_keep_ratio_history(self.pruner.history,
                                osp.join(out, 'keep_ratio_per_block.png'),
                                self.iters_per_epoch)
        plot_param_allocation(self.pruner.dense_params.tolist(),
                              self.pruner.kept_params().tolist(),
                              osp.join(out, 'param_allocation.png'))
        plot_benefit_history(self.pruner.history,
                             osp.join(out, 'block_benefit.png'))

    def _export(self, runner, configs: bool = True) -> None:
        """Save the slim checkpoint (and its configs) on rank 0."""
        if not dist.is_main_process():
            return
        out = self._out_dir(runner)
        model_cfg = self._slim_model_cfg(runner)
        slim_model = MODELS.build(copy.deepcopy(model_cfg))
        state = self.pruner.slim_state_dict(self._model(runner))
        slim_model.load_state_dict(state, strict=True)
        ckpt = osp.join(out, 'slim_model.pth')
        save_checkpoint(
            dict(meta=dict(p3b_slim_arch=self.pruner.slim_arch(),
                           iter=runner.iter, epoch=runner.epoch,
                           keep_ratio=self.pruner.global_keep_ratio()),
                 state_dict=state), ckpt)
        if configs or not osp.isfile(osp.join(out, 'finetune.py')):
            self._write_configs(runner, model_cfg, ckpt, out)
        params = sum(p.numel() for p in slim_model.parameters())
        dense = sum(p.numel() for p in self._model(runner).parameters())
        msg = (f'P3BHook: slim model {params:,} / {dense:,} parameters '
               f'({params / dense:.4f}) -> {ckpt}')
        if self.verify_slim:
            msg += f'; max |slim - masked| = {self._verify(slim_model):.2e}'
        runner.logger.info(msg)

    def _slim_model_cfg(self, runner) -> dict:
        model_cfg = copy.deepcopy(runner.cfg.model)
        model_cfg = model_cfg.to_dict() if hasattr(model_cfg, 'to_dict') \
            else dict(model_cfg)
        backbone = find_backbone(self._model(runner))
        cfg = dict(model_cfg['backbone'])
        cfg.update(type=SLIM_BACKBONES[type(backbone)], init_cfg=None,
                   slim_arch=self.pruner.slim_arch())
        model_cfg['backbone'] = cfg
        return model_cfg

    @torch.no_grad()
    def _verify(self, slim_model) -> float:
        dense_bb = self.pruner.view.backbone
        device = next(dense_bb.parameters()).device
        slim_bb = find_backbone(slim_model).to(device)
        size = getattr(dense_bb, 'img_size', None)
        if size is None:  # ViTPyramid
            size = [g * dense_bb.patch_size for g in dense_bb.patch_grid]
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(2, 3, *size, generator=gen).to(device)
        was_training, active = dense_bb.training, self.pruner.gated.active
        dense_bb.eval()
        slim_bb.eval()
        self.pruner.gated.active = True
        try:
            ref, out = dense_bb(x), slim_bb(x)
        finally:
            self.pruner.gated.active = active
            dense_bb.train(was_training)
        return max(float((a - b).abs().max()) for a, b in zip(ref, out))

    def _write_configs(self, runner, model_cfg: dict, ckpt: str,
                       out: str) -> None:
        Config(dict(model=model_cfg)).dump(osp.join(out, 'slim_model.py'))
        # the run's full config (with --cfg-options), else its file
        base = osp.join(out, 'pruning_run_config.py')
        try:
            runner.cfg.dump(base)
        except Exception as err:  # e.g. objects that cannot be written
            if not runner.cfg.filename:
                raise
            runner.logger.warning(f'P3BHook: cannot dump the run config '
                                  f'({err}); finetune.py inherits '
                                  f'{runner.cfg.filename}')
            base = runner.cfg.filename
        hooks = [h for h in (runner.cfg.get('custom_hooks') or [])
                 if h.get('type') not in ('P3BHook', P3BHook)]
        hooks = [h.to_dict() if hasattr(h, 'to_dict') else dict(h)
                 for h in hooks]
        backbone = model_cfg['backbone']
        text = (
            '# Fine-tune the P3B-slimmed model: the pruning run\'s config with '
            'the slim\n# backbone, started from the slim checkpoint, without '
            'P3BHook.\n# python tools/train.py THIS_FILE [--work-dir DIR]\n'
            f'_base_ = [{osp.abspath(base)!r}]\n\n'
            f'work_dir = {osp.join(osp.abspath(runner.work_dir), "finetune")!r}'
            f'\nload_from = {osp.abspath(ckpt)!r}\nresume = False\n'
            f'custom_hooks = {pprint.pformat(hooks, sort_dicts=False)}\n'
            'model = dict(\n    backbone=dict(\n        _delete_=True,\n'
            + ''.join(f'        {k}={pprint.pformat(v, sort_dicts=False)},\n'
                      for k, v in backbone.items()) + '))\n')
        with open(osp.join(out, 'finetune.py'), 'w') as f:
            f.write(text)
