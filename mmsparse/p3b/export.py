"""The slim model P3B exports: architecture, weights, check and configs.

At the finalize step the hard gates define, per encoder block, the kept
widths (``slim_arch``); :func:`slim_state_dict` cuts the task model's
blocks to those widths (:func:`~mmsparse.p3b.slim.slice_block`) and keeps
every other key, so the result loads strictly into the same model with a
slim backbone built from ``slim_arch``. The config helpers work on plain
dicts and text: the engine decides where they are written.
"""
import copy
import os.path as osp
import pprint
from typing import Dict, List, Sequence

import torch
import torch.nn as nn

from .adapter import ViTView, find_backbone
from .gates import GATE_NAMES, GatedViT
from .slim import SlimBlock, slice_block


def block_gates(gated: GatedViT, block_idx: int) -> Dict[str, torch.Tensor]:
    """The six gate tensors of encoder block ``block_idx``."""
    return {n: gated.gate(block_idx, n) for n in GATE_NAMES}


def slim_blocks(view: ViTView, gated: GatedViT) -> List[SlimBlock]:
    """Slim copies of all blocks under the current gates."""
    return [slice_block(b, block_gates(gated, i))
            for i, b in enumerate(view.blocks)]


def slim_arch(view: ViTView, gated: GatedViT) -> List[Dict[str, int]]:
    """Kept sizes per block (the ``slim_arch`` of a slim backbone)."""
    return [{n: int((g.detach() >= 0.5).sum()) for n, g in
             block_gates(gated, i).items()}
            for i in range(len(view.blocks))]


def slim_state_dict(view: ViTView, gated: GatedViT,
                    model: nn.Module) -> Dict[str, torch.Tensor]:
    """State dict of ``model`` with its blocks replaced by the slim ones.

    Keys outside the block container are unchanged, so the result loads
    strictly into the same model with a slim backbone whose ``slim_arch``
    is :func:`slim_arch`.

    Args:
        view (ViTView): The view of the pruned backbone.
        gated (GatedViT): Its gates.
        model (nn.Module): The task model holding the pruned backbone.

    Returns:
        dict: CPU tensors by key.
    """
    container = getattr(view.backbone, view.container)
    prefix = next(name for name, mod in model.named_modules()
                  if mod is container)
    prefix = prefix + '.' if prefix else ''
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()
             if not k.startswith(prefix)}
    for i, block in enumerate(slim_blocks(view, gated)):
        for k, v in block.state_dict().items():
            state[f'{prefix}{i}.{k}'] = v.detach().cpu()
    return state


def slim_model_cfg(model_cfg: dict, slim_type: str,
                   arch: Sequence[Dict[str, int]]) -> dict:
    """The task model config with its backbone replaced by the slim
    backbone ``slim_type`` of architecture ``arch`` (same other settings,
    no ``init_cfg``: the weights come from the slim checkpoint)."""
    model_cfg = copy.deepcopy(dict(model_cfg))
    backbone = dict(model_cfg['backbone'])
    backbone.update(type=slim_type, init_cfg=None, slim_arch=arch)
    model_cfg['backbone'] = backbone
    return model_cfg


@torch.no_grad()
def max_slim_difference(gated: GatedViT, slim_model: nn.Module) -> float:
    """Largest absolute difference between the outputs of the gated dense
    backbone (masks on) and the backbone of ``slim_model`` on a fixed
    random batch of two images (eval mode; modes and gates are restored)."""
    dense_bb = gated.view.backbone
    device = next(dense_bb.parameters()).device
    slim_bb = find_backbone(slim_model).to(device)
    size = getattr(dense_bb, 'img_size', None)
    if size is None:  # ViTPyramid
        size = [g * dense_bb.patch_size for g in dense_bb.patch_grid]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, *size, generator=gen).to(device)
    was_training, active = dense_bb.training, gated.active
    dense_bb.eval()
    slim_bb.eval()
    gated.active = True
    try:
        ref, out = dense_bb(x), slim_bb(x)
    finally:
        gated.active = active
        dense_bb.train(was_training)
    return max(float((a - b).abs().max()) for a, b in zip(ref, out))


def finetune_config_text(base: str, work_dir: str, ckpt: str,
                         hooks: List[dict], backbone: dict) -> str:
    """Text of ``finetune.py``: inherit the pruning run's config ``base``,
    start from the slim checkpoint ``ckpt`` with the slim ``backbone``,
    keep the custom ``hooks`` (P3BHook removed by the caller), write to
    ``<work_dir>/finetune``."""
    return (
        '# Fine-tune the P3B-slimmed model: the pruning run\'s config with '
        'the slim\n# backbone, started from the slim checkpoint, without '
        'P3BHook.\n# python tools/train.py THIS_FILE [--work-dir DIR]\n'
        f'_base_ = [{osp.abspath(base)!r}]\n\n'
        f'work_dir = {osp.join(osp.abspath(work_dir), "finetune")!r}'
        f'\nload_from = {osp.abspath(ckpt)!r}\nresume = False\n'
        f'custom_hooks = {pprint.pformat(hooks, sort_dicts=False)}\n'
        'model = dict(\n    backbone=dict(\n        _delete_=True,\n'
        + ''.join(f'        {k}={pprint.pformat(v, sort_dicts=False)},\n'
                  for k, v in backbone.items()) + '))\n')


__all__ = [
    'block_gates', 'slim_blocks', 'slim_arch', 'slim_state_dict',
    'slim_model_cfg', 'max_slim_difference', 'finetune_config_text'
]
