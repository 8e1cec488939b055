"""Fold the kept-dimension indices of P3B's slim blocks into their weights.

A slim sub-block (:class:`mmsparse.p3b.slim.SlimAttention` /
:class:`~mmsparse.p3b.slim.SlimMlp`) reads the full-width residual through
a gather of its kept input dimensions (after the full-width LayerNorm) and
adds its update onto the kept output dimensions through a gather of the
update padded with a zero column; exported, these are a ``Gather`` node and
a ``Pad`` + ``Gather`` pair per sub-block. :func:`fold_slim_indices`
rewrites a copy of the model so that these nodes are not needed:

* ``'out'``: the output Linear (``proj`` / ``fc2``; a constant update)
  gets all D output rows, zero on the dropped dimensions, and the residual
  update is a plain add (which onnxruntime can fuse with the next norm);
* ``'in'``: the norm's affine gets all D dimensions (zero on the dropped
  ones, so it outputs exactly zero there) and the input Linear (``qkv`` /
  ``fc1``) all D input columns, zero on the dropped dimensions.

The outputs are unchanged up to float summation order (the added products
are exact zeros); the price is multiply-adds by zero: ``'out'`` adds
``N * inner * (D - out_dims)`` per sub-block, ``'in'`` adds
``N * inner * (D - in_dims)``.
"""
import copy
from typing import Sequence

import torch
import torch.nn as nn

FOLD_SIDES = ('in', 'out')


def _pad_linear(linear: nn.Linear, index: torch.Tensor, dims: int,
                side: str) -> nn.Linear:
    """``linear`` with ``dims`` inputs ('in') or outputs ('out'), its
    weights at ``index`` and zeros elsewhere."""
    if side == 'out':
        new = nn.Linear(linear.in_features, dims, linear.bias is not None)
        new.weight.zero_()
        new.weight[index] = linear.weight
        if linear.bias is not None:
            new.bias.zero_()
            new.bias[index] = linear.bias
    else:
        new = nn.Linear(dims, linear.out_features, linear.bias is not None)
        new.weight.zero_()
        new.weight[:, index] = linear.weight
        if linear.bias is not None:
            new.bias.copy_(linear.bias)
    return new.to(linear.weight)


def _padded(values: torch.Tensor, index: torch.Tensor,
            dims: int) -> nn.Parameter:
    return nn.Parameter(values.new_zeros(dims).index_copy(0, index, values))


@torch.no_grad()
def fold_slim_indices(model: nn.Module,
                      sides: Sequence[str] = FOLD_SIDES) -> nn.Module:
    """A copy of ``model`` whose slim sub-blocks gather no kept dims.

    Args:
        model (nn.Module): A model with P3B slim blocks (any module holding
            ``SlimAttention`` / ``SlimMlp``; other modules are copied as
            they are).
        sides (Sequence[str]): 'in' (fold the input gather into the norm
            and the first Linear), 'out' (fold the update's pad and gather
            onto the kept outputs into the last Linear or the constant).
            Defaults to ('in', 'out').

    Returns:
        nn.Module: The folded copy (``model`` is not changed), in the mode
        (train / eval) of ``model``.

    Raises:
        ValueError: A side that is not one of ``FOLD_SIDES``.
    """
    bad = [s for s in sides if s not in FOLD_SIDES]
    if bad:
        raise ValueError(f'fold_slim_indices: sides must be among '
                         f'{FOLD_SIDES}, got {bad[0]!r}')
    from mmsparse.p3b.slim import SlimAttention, SlimMlp
    model = copy.deepcopy(model)
    for module in model.modules():
        if not isinstance(module, (SlimAttention, SlimMlp)):
            continue
        dims = module.embed_dims
        attn = isinstance(module, SlimAttention)
        first, last = ('qkv', 'proj') if attn else ('fc1', 'fc2')
        index = module.out_index
        if 'out' in sides and module.mode != 'skip' and \
                index.numel() < dims:
            if module.mode == 'const':
                module.const = _padded(module.const, index, dims)
            else:
                setattr(module, last, _pad_linear(
                    getattr(module, last), index, dims, 'out'))
            module.out_index = torch.arange(dims, device=index.device)
        if 'in' in sides and module.mode == 'full' and \
                module.norm.weight.numel() < dims:
            norm = module.norm
            index = norm.index
            setattr(module, first, _pad_linear(
                getattr(module, first), index, dims, 'in'))
            norm.weight = _padded(norm.weight, index, dims)
            norm.bias = _padded(norm.bias, index, dims)
            norm.index = torch.arange(dims, device=index.device)
    return model
