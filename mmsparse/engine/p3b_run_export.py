"""What a P3B training run exports when its masks are hard.

Glandorf & Rosenhahn, "Pruning by Block Benefit",
https://arxiv.org/abs/2506.23675.

Under ``<work_dir>/<export_dir>`` (``p3b`` by default) ``P3BHook`` writes

- the slim model pair ``slim_model.pth`` + ``slim_model.py``
  (:func:`~mmsparse.models.backbones.p3b_export.write_p3b_export`, the
  file format that :class:`~mmsparse.models.backbones.P3BViTPyramid`
  reads);
- ``finetune.py``: the run's config (dumped to ``pruning_run_config.py``,
  else its file) with the slim backbone, started from the slim checkpoint,
  without ``P3BHook`` (:func:`~mmsparse.p3b.export.finetune_config_text`).

This module builds those files from a runner and a
:class:`~mmsparse.p3b.P3BPruner`; it lives in the engine because it reads
the run's config and builds registered models (mmengine), while the slimming
itself is plain PyTorch in :mod:`mmsparse.p3b.export`.
"""
import copy
import os
import os.path as osp
from typing import Sequence

import torch.nn as nn

from mmsparse.models.backbones.p3b_export import write_p3b_export
from mmsparse.models.backbones.slim_vit import SLIM_BACKBONES
from mmsparse.p3b import (P3BPruner, count_params, find_backbone,
                          finetune_config_text, max_slim_difference,
                          slim_model_cfg)
from mmsparse.registry import MODELS


def export_folder(work_dir: str, export_dir: str) -> str:
    """``<work_dir>/<export_dir>``, created if missing."""
    path = osp.join(work_dir, export_dir)
    os.makedirs(path, exist_ok=True)
    return path


def check_exportable(backbone: nn.Module, model_cfg: dict,
                     owner: str = 'P3BHook') -> None:
    """Raise ``TypeError`` (starting with ``owner``) before training if the
    slim model cannot be exported: a backbone without a slim counterpart in
    :data:`~mmsparse.models.backbones.slim_vit.SLIM_BACKBONES`, or a model
    config without ``backbone``."""
    if type(backbone) not in SLIM_BACKBONES:
        raise TypeError(
            f'{owner}: cannot export a slim model for backbone '
            f'{type(backbone).__name__}; supported: '
            f'{[c.__name__ for c in SLIM_BACKBONES]}')
    if 'backbone' not in model_cfg:
        raise TypeError(f'{owner}: the model config has no `backbone` '
                        f'(type {model_cfg.get("type")!r})')


def export_slim_model(runner, model: nn.Module, pruner: P3BPruner,
                      out_dir: str, configs: bool = True,
                      verify: bool = True,
                      drop_hooks: Sequence = ('P3BHook', ),
                      owner: str = 'P3BHook') -> None:
    """Save the slim model of ``pruner`` (and its configs) to ``out_dir``.

    Builds the task model with the slim backbone from the run's config,
    loads the sliced weights strictly, writes ``slim_model.{pth,py}``, then
    ``finetune.py`` (always when ``configs``, else only if missing) and
    logs the parameter count. Call it on one rank.

    Args:
        runner (Runner): The run (its ``cfg``, ``work_dir``, ``iter``,
            ``epoch`` and ``logger``).
        model (nn.Module): The (unwrapped) task model being pruned.
        pruner (P3BPruner): Its pruner, with hard masks.
        out_dir (str): The export folder (:func:`export_folder`).
        configs (bool): Rewrite ``finetune.py``. Defaults to True.
        verify (bool): Log the largest difference between the slim and the
            masked backbone on a random batch. Defaults to True.
        drop_hooks (Sequence): Types (names or classes) of the custom
            hooks ``finetune.py`` leaves out. Defaults to ('P3BHook', ).
        owner (str): Start of the log messages. Defaults to 'P3BHook'.
    """
    model_cfg = runner.cfg.model
    model_cfg = slim_model_cfg(
        model_cfg.to_dict() if hasattr(model_cfg, 'to_dict') else
        dict(model_cfg), SLIM_BACKBONES[type(find_backbone(model))],
        pruner.slim_arch())
    slim_model = MODELS.build(copy.deepcopy(model_cfg))
    state = pruner.slim_state_dict(model)
    slim_model.load_state_dict(state, strict=True)
    write_p3b_export(out_dir, model_cfg, state, pruner.slim_arch(),
                     iter=runner.iter, epoch=runner.epoch,
                     keep_ratio=pruner.global_keep_ratio())
    ckpt = osp.join(out_dir, 'slim_model.pth')
    if configs or not osp.isfile(osp.join(out_dir, 'finetune.py')):
        write_finetune_config(runner, model_cfg, ckpt, out_dir, drop_hooks,
                              owner)
    params, dense = count_params(slim_model), count_params(model)
    msg = (f'{owner}: slim model {params:,} / {dense:,} parameters '
           f'({params / dense:.4f}) -> {ckpt}')
    if verify:
        diff = max_slim_difference(pruner.gated, slim_model)
        msg += f'; max |slim - masked| = {diff:.2e}'
    runner.logger.info(msg)


def write_finetune_config(runner, model_cfg: dict, ckpt: str, out_dir: str,
                          drop_hooks: Sequence = ('P3BHook', ),
                          owner: str = 'P3BHook') -> None:
    """Write ``<out_dir>/finetune.py``: the run's config with the slim
    backbone of ``model_cfg``, ``load_from`` the slim checkpoint ``ckpt``,
    and the run's custom hooks except ``drop_hooks``.

    The run's full config (with ``--cfg-options``) is dumped to
    ``pruning_run_config.py`` and inherited; if it cannot be dumped, the
    run's config file is inherited (with a warning).
    """
    base = osp.join(out_dir, 'pruning_run_config.py')
    try:
        runner.cfg.dump(base)
    except Exception as err:  # e.g. objects that cannot be written
        if not runner.cfg.filename:
            raise
        runner.logger.warning(f'{owner}: cannot dump the run config '
                              f'({err}); finetune.py inherits '
                              f'{runner.cfg.filename}')
        base = runner.cfg.filename
    hooks = [h for h in (runner.cfg.get('custom_hooks') or [])
             if h.get('type') not in tuple(drop_hooks)]
    hooks = [h.to_dict() if hasattr(h, 'to_dict') else dict(h)
             for h in hooks]
    with open(osp.join(out_dir, 'finetune.py'), 'w') as f:
        f.write(finetune_config_text(base, runner.work_dir, ckpt, hooks,
                                     model_cfg['backbone']))


__all__ = [
    'export_folder', 'check_exportable', 'export_slim_model',
    'write_finetune_config'
]
