"""The files of a P3B export: what ``P3BHook`` writes when it slims a ViT.

Glandorf & Rosenhahn, "Pruning by Block Benefit", https://arxiv.org/abs/2506.23675.

A P3B run writes, under ``<work_dir>/p3b/``:

- ``slim_model.pth``: ``dict(meta=dict(p3b_slim_arch=[...], ...),
  state_dict=...)``, the weights of the whole slimmed task model (for a
  classifier ``backbone.*`` and ``head.*``);
- ``slim_model.py``: ``model = dict(...)``, the config that rebuilds it; its
  backbone (``SlimVisionTransformer`` or ``SlimViTPyramid``) names the dense
  architecture (``arch``, ``patch_size``, ``img_size``, ...) and the kept
  widths per block (``slim_arch``).

:func:`read_p3b_export` reads that pair into the settings a slim backbone of
another task is built from (:class:`~mmsparse.models.backbones.P3BViTPyramid`);
:func:`write_p3b_export` writes the same files: at the end of a P3B run
(:mod:`mmsparse.engine.p3b_run_export`, which adds ``finetune.py``) and in
tools that make a slim architecture without a training run (e.g. the
composed benchmark).
"""
import copy
import os
import os.path as osp
from typing import Dict, List, Optional

import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import CheckpointLoader, save_checkpoint

from .slim_vit import check_slim_arch

CKPT_NAME = 'slim_model.pth'
CFG_NAME = 'slim_model.py'
_ARCH_KEYS = ('embed_dims', 'num_layers', 'num_heads', 'feedforward_channels')
_SLIM_TYPES = ('SlimVisionTransformer', 'SlimViTPyramid')


def export_paths(path: str) -> Dict[str, Optional[str]]:
    """Checkpoint and config of an export given as a folder or either file.

    Args:
        path (str): The export folder (``<work_dir>/p3b``), its
            ``slim_model.pth`` or its ``slim_model.py``.

    Returns:
        dict: ``checkpoint`` and ``config`` (str, or None when the file is
        not there; at least one of them is).
    """
    if osp.isdir(path):
        folder, ckpt = path, osp.join(path, CKPT_NAME)
    elif path.endswith('.py'):
        folder, ckpt = osp.dirname(path), osp.join(osp.dirname(path),
                                                   CKPT_NAME)
    else:
        folder, ckpt = osp.dirname(path), path
    cfg = path if path.endswith('.py') else osp.join(folder, CFG_NAME)
    out = dict(checkpoint=ckpt if osp.isfile(ckpt) else None,
               config=cfg if osp.isfile(cfg) else None)
    if out['checkpoint'] is None and out['config'] is None:
        raise FileNotFoundError(
            f'P3B export: neither {ckpt!r} nor {cfg!r} exists. Give the '
            f'folder P3BHook exported to (<work_dir>/p3b, with {CKPT_NAME} '
            f'and {CFG_NAME}) or one of its files')
    return out


def _dense_arch(backbone: dict) -> dict:
    """The dense arch dict of an exported slim backbone config."""
    arch = backbone.get('arch', 'base' if backbone['type'] ==
                        'SlimVisionTransformer' else 'small')
    if isinstance(arch, dict):
        missing = set(_ARCH_KEYS) - set(arch)
        if missing:
            raise ValueError(f'P3B export: backbone arch misses keys '
                             f'{sorted(missing)}')
        return {k: int(arch[k]) for k in _ARCH_KEYS}
    if backbone['type'] == 'SlimVisionTransformer':
        from mmpretrain.models.backbones import VisionTransformer as zoo
    else:
        from .vit_pyramid import ViTPyramid as zoo
    key = arch.lower()
    if key not in zoo.arch_zoo:
        raise ValueError(f'P3B export: unknown arch {arch!r} of '
                         f'{backbone["type"]}')
    return {k: int(zoo.arch_zoo[key][k]) for k in _ARCH_KEYS}


def _backbone_settings(backbone: dict) -> dict:
    """ViTPyramid settings from an exported slim backbone config."""
    kind = backbone.get('type')
    if kind not in _SLIM_TYPES:
        raise ValueError(f'P3B export: the backbone of {CFG_NAME} is '
                         f'{kind!r}, not one of {_SLIM_TYPES}')
    if backbone.get('pre_norm', False):
        raise ValueError('P3B export: pre_norm=True (CLIP-style ViT) has no '
                         'counterpart in ViTPyramid')
    if not backbone.get('final_norm', True):
        raise ValueError('P3B export: final_norm=False has no counterpart '
                         'in ViTPyramid (its final norm is always on)')
    norm_cfg = backbone.get('norm_cfg') or {}
    img_size = backbone.get('img_size', 224)
    return dict(
        arch=_dense_arch(backbone),
        patch_size=int(backbone.get('patch_size', 16)),
        img_size=tuple(img_size) if isinstance(img_size, (list, tuple))
        else int(img_size),
        qkv_bias=bool(backbone.get('qkv_bias', True)),
        with_cls_token=bool(backbone.get('with_cls_token', True)),
        act=backbone.get('act', 'GELU'),
        eps=float(norm_cfg.get('eps', 1e-6)),
        slim_arch=backbone.get('slim_arch'))


def read_p3b_export(path: str, arch: Optional[dict] = None) -> dict:
    """Read a P3B export into the settings of a slim ViT backbone.

    Args:
        path (str): Export folder, ``slim_model.pth`` or ``slim_model.py``.
        arch (dict, optional): Dense arch (``embed_dims, num_layers,
            num_heads, feedforward_channels``), needed only when the export
            has no ``slim_model.py`` (then ``patch_size`` 16, pre-training
            size 224, qkv bias, class token and GELU are assumed).
            Defaults to None.

    Returns:
        dict: ``checkpoint`` (None when the export has only its config:
        enough to build the model, e.g. to test a trained composed model),
        ``arch``, ``patch_size``, ``img_size`` (the
        pre-training size), ``qkv_bias``, ``with_cls_token``, ``act``,
        ``eps`` and ``slim_arch`` (list of per-block kept widths).
    """
    paths = export_paths(path)
    if paths['config'] is not None:
        model = Config.fromfile(paths['config']).get('model') or {}
        backbone = model.get('backbone')
        if not backbone:
            raise ValueError(f'P3B export: {paths["config"]} has no '
                             'model.backbone')
        out = _backbone_settings(dict(backbone))
        if arch is not None and dict(arch) != out['arch']:
            raise ValueError(f'P3B export: arch={dict(arch)} disagrees with '
                             f'{paths["config"]} ({out["arch"]})')
    elif arch is None:
        raise ValueError(
            f'P3B export: {paths["checkpoint"]} has no {CFG_NAME} beside it; '
            'give the dense arch (dict with ' + ', '.join(_ARCH_KEYS) + ')')
    else:
        out = _backbone_settings(
            dict(type='SlimViTPyramid', arch=dict(arch)))
    if out['slim_arch'] is None and paths['checkpoint'] is not None:
        meta = load_export_checkpoint(paths['checkpoint']).get('meta') or {}
        out['slim_arch'] = meta.get('p3b_slim_arch')
    if out['slim_arch'] is None:
        raise ValueError(f'P3B export {path!r}: neither {CFG_NAME} nor the '
                         f'meta of {CKPT_NAME} hold the slim_arch')
    a = out['arch']
    out['slim_arch'] = check_slim_arch(
        out['slim_arch'], a['num_layers'], a['embed_dims'], a['num_heads'],
        a['feedforward_channels'], 'P3B export')
    out['checkpoint'] = paths['checkpoint']
    return out


def load_export_checkpoint(path: str) -> dict:
    """The export checkpoint as a dict with ``state_dict`` and ``meta``."""
    ckpt = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    if not isinstance(ckpt, dict) or 'state_dict' not in ckpt:
        raise ValueError(f'P3B export: {path} is not a checkpoint with a '
                         'state_dict (written by P3BHook?)')
    return ckpt


def write_p3b_export(out_dir: str, model_cfg: dict,
                     state_dict: Dict[str, torch.Tensor],
                     slim_arch: List[Dict[str, int]], **meta) -> str:
    """Write ``slim_model.pth`` + ``slim_model.py`` as ``P3BHook`` does.

    Args:
        out_dir (str): Folder (created).
        model_cfg (dict): Config of the slim task model (its backbone has
            ``type`` SlimVisionTransformer/SlimViTPyramid and
            ``slim_arch``).
        state_dict (dict): Weights of the slim task model.
        slim_arch (list[dict]): Kept widths per block.
        **meta: More entries of the checkpoint's ``meta``.

    Returns:
        str: The folder.
    """
    os.makedirs(out_dir, exist_ok=True)
    save_checkpoint(
        dict(meta=dict(p3b_slim_arch=slim_arch, **meta),
             state_dict={k: v.detach().cpu()
                         for k, v in state_dict.items()}),
        osp.join(out_dir, CKPT_NAME))
    Config(dict(model=copy.deepcopy(model_cfg))).dump(
        osp.join(out_dir, CFG_NAME))
    return out_dir
