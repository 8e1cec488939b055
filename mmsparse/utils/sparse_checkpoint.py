"""Compressed (sparse) state dicts whose size scales with the non-zeros.

Each floating tensor is stored in the smallest of three encodings:

* ``dense``: the tensor itself (``numel·b`` bytes, ``b`` bytes per value);
* ``bitmap``: a packed bit mask plus the non-zero values
  (``numel/8 + nnz·b`` bytes);
* ``coo``: flat positions of the non-zeros (int16 for tensors of at most
  32,767 elements, else int32) plus their values (``nnz·(2 or 4) + nnz·b``).

Integer tensors and non-tensors are kept as they are. Decoding restores the
dense tensors bit-exactly, so the result loads with ``strict=True`` into the
dense architecture.
"""
from collections import OrderedDict
from typing import Any, Dict, Mapping, Optional

import torch

SPARSE_FORMAT = 'mmsparse-sparse-state-dict-v1'
_TAG = '__mmsparse_sparse__'


def _pack_bits(mask: torch.Tensor) -> torch.Tensor:
    flat = mask.flatten().to(torch.uint8)
    pad = (-flat.numel()) % 8
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    weights = (1 << torch.arange(8, dtype=torch.uint8))
    return (flat.view(-1, 8) * weights).sum(1, dtype=torch.uint8)


def _unpack_bits(packed: torch.Tensor, numel: int) -> torch.Tensor:
    shifts = torch.arange(8, dtype=torch.uint8)
    bits = (packed.unsqueeze(1) >> shifts) & 1
    return bits.flatten()[:numel].bool()


def _index_dtype(numel: int) -> torch.dtype:
    if numel <= torch.iinfo(torch.int16).max:
        return torch.int16
    if numel <= torch.iinfo(torch.int32).max:
        return torch.int32
    return torch.int64


def encode_tensor(tensor: torch.Tensor,
                  value_dtype: Optional[torch.dtype] = None) -> Any:
    """Encode one tensor in the smallest of dense / bitmap / coo.

    Args:
        tensor (Tensor): The tensor (moved to CPU).
        value_dtype (torch.dtype, optional): Store floating values in this
            dtype (e.g. ``torch.float16``; lossy). Defaults to None (keep).

    Returns:
        Tensor or dict: The tensor itself (dense) or a tagged dict.
    """
    tensor = tensor.detach().cpu()
    if not tensor.is_floating_point():
        return tensor
    dtype = value_dtype or tensor.dtype
    numel = tensor.numel()
    flat = tensor.flatten()
    nonzero = flat != 0
    nnz = int(nonzero.sum())
    vbytes = torch.empty((), dtype=dtype).element_size()
    idx_dtype = _index_dtype(numel)
    ibytes = torch.empty((), dtype=idx_dtype).element_size()
    sizes = dict(
        dense=numel * vbytes,
        bitmap=(numel + 7) // 8 + nnz * vbytes,
        coo=nnz * (ibytes + vbytes))
    best = min(sizes, key=sizes.get)
    if best == 'dense':
        return tensor if value_dtype is None else tensor.to(value_dtype)
    values = flat[nonzero].to(dtype).clone()
    out = {
        _TAG: best,
        'shape': tuple(tensor.shape),
        'dtype': str(tensor.dtype).replace('torch.', ''),
        'values': values
    }
    if best == 'bitmap':
        out['bitmap'] = _pack_bits(nonzero)
    else:
        out['indices'] = torch.nonzero(nonzero).flatten().to(idx_dtype)
    return out


def decode_tensor(obj: Any) -> Any:
    """Inverse of :func:`encode_tensor` (non-encoded objects pass through)."""
    if not (isinstance(obj, dict) and _TAG in obj):
        return obj
    kind = obj[_TAG]
    shape = tuple(obj['shape'])
    dtype = getattr(torch, obj['dtype'], None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f'malformed sparse tensor: unknown dtype '
                         f'{obj["dtype"]!r}')
    numel = 1
    for d in shape:
        numel *= int(d)
    flat = torch.zeros(numel, dtype=dtype)
    values = obj['values'].to(dtype)
    if kind == 'bitmap':
        mask = _unpack_bits(obj['bitmap'], numel)
        if int(mask.sum()) != values.numel():
            raise ValueError('malformed sparse tensor: bitmap and values '
                             'disagree')
        flat[mask] = values
    elif kind == 'coo':
        idx = obj['indices'].long()
        if idx.numel() != values.numel() or (idx.numel() and (
                int(idx.min()) < 0 or int(idx.max()) >= numel)):
            raise ValueError('malformed sparse tensor: indices out of range '
                             'or not matching the values')
        flat[idx] = values
    else:
        raise ValueError(f'malformed sparse tensor: unknown encoding '
                         f'{kind!r} (allowed: bitmap, coo)')
    return flat.view(shape)


def sparsify_state_dict(state_dict: Mapping[str, Any],
                        value_dtype: Optional[torch.dtype] = None
                        ) -> 'OrderedDict[str, Any]':
    """Encode every tensor of a state dict (see :func:`encode_tensor`)."""
    return OrderedDict((k, encode_tensor(v, value_dtype)
                        if torch.is_tensor(v) else v)
                       for k, v in state_dict.items())


def densify_state_dict(state_dict: Mapping[str, Any]
                       ) -> 'OrderedDict[str, Any]':
    """Decode a state dict written by :func:`sparsify_state_dict`."""
    return OrderedDict((k, decode_tensor(v)) for k, v in state_dict.items())


def is_sparse_checkpoint(checkpoint: Any) -> bool:
    """Whether an object is a checkpoint written by
    :func:`save_sparse_checkpoint`."""
    return isinstance(checkpoint, dict) and checkpoint.get(
        'sparse_format') == SPARSE_FORMAT


def save_sparse_checkpoint(checkpoint: Mapping[str, Any],
                           path: str,
                           value_dtype: Optional[torch.dtype] = None,
                           keep_keys=('meta', )) -> Dict[str, Any]:
    """Write a compressed checkpoint.

    Args:
        checkpoint (Mapping): An mmengine checkpoint (with ``state_dict``) or
            a bare state dict.
        path (str): Output file.
        value_dtype (torch.dtype, optional): See :func:`encode_tensor`.
        keep_keys (Sequence[str]): Top-level keys copied besides the state
            dict (optimizer and pruning state are dropped).
            Defaults to ('meta', ).

    Returns:
        dict: The object written.
    """
    state_dict = checkpoint.get('state_dict', checkpoint)
    out = {k: checkpoint[k] for k in keep_keys if k in checkpoint}
    out['state_dict'] = sparsify_state_dict(state_dict, value_dtype)
    out['sparse_format'] = SPARSE_FORMAT
    torch.save(out, path)
    return out


def load_sparse_checkpoint(path: str,
                           map_location: str = 'cpu') -> Dict[str, Any]:
    """Read a compressed checkpoint back as a dense mmengine checkpoint
    (``{'meta': ..., 'state_dict': ...}``)."""
    checkpoint = torch.load(path, map_location=map_location,
                            weights_only=False)
    if not is_sparse_checkpoint(checkpoint):
        raise ValueError(f'{path} is not a sparse checkpoint of mmsparse '
                         f'(missing sparse_format={SPARSE_FORMAT!r})')
    dense = dict(checkpoint)
    dense.pop('sparse_format')
    dense['state_dict'] = densify_state_dict(checkpoint['state_dict'])
    return dense
