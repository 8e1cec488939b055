"""Checkpoint state of the pruning hooks: CPU copies and packed masks."""
from collections import OrderedDict
from typing import Dict, Tuple, Union

import torch

from mmsparse.utils.sparse_checkpoint import pack_bits, unpack_bits

#: A packed mask: ``(shape, bits)`` as written by :func:`pack_masks`.
PackedMask = Tuple[Tuple[int, ...], torch.Tensor]


def to_cpu(obj):
    """Recursively move tensors to CPU (loaded state may be on a GPU)."""
    if torch.is_tensor(obj):
        return obj.cpu()
    if isinstance(obj, dict):
        return type(obj)((k, to_cpu(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


def pack_masks(masks: Dict[str, torch.Tensor]
               ) -> 'OrderedDict[str, PackedMask]':
    """Boolean masks as ``(shape, packed bits)`` on the CPU (1 bit each)."""
    return OrderedDict(
        (k, (tuple(v.shape), pack_bits(v.cpu()))) for k, v in masks.items())


def unpack_masks(packed: Dict[str, Union[PackedMask, torch.Tensor]]
                 ) -> 'OrderedDict[str, torch.Tensor]':
    """Inverse of :func:`pack_masks`; plain mask tensors (checkpoints
    before the packed format) are taken as they are."""
    masks = OrderedDict()
    for name, item in packed.items():
        if torch.is_tensor(item):
            masks[name] = item.bool()
            continue
        shape, bits = item
        numel = 1
        for d in shape:
            numel *= d
        masks[name] = unpack_bits(bits, numel).view(shape)
    return masks
