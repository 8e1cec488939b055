"""Compressed (sparse) state dicts whose size scales with the non-zeros.

Each floating tensor is stored in the smallest of four encodings:

* ``dense``: the tensor itself (``numel·b`` bytes, ``b`` bytes per value);
* ``bitmap``: a packed bit mask plus the non-zero values
  (``numel/8 + nnz·b`` bytes);
* ``coo``: flat positions of the non-zeros (int16 for tensors of at most
  32,767 elements, else int32) plus their values (``nnz·(2 or 4) + nnz·b``);
* ``delta``: the gaps between consecutive non-zero positions as 8-bit (or
  16-bit) codes, a gap above ``M`` = 255 (65,535) written as ``0`` codes
  (each: advance ``M``) before its remainder
  (``(nnz + Σ⌊(gap−1)/M⌋)·(1 or 2) + nnz·b``; ~1 byte per non-zero at
  densities above ~1/255, 2 bytes below, against 4 for int32 coo).

Values keep their dtype. Integer tensors and non-tensors are kept as they
are. Decoding restores every value exactly (``torch.equal``; the bits of
every non-zero value; a ``-0.0`` — what ``w.mul_(mask)`` leaves for pruned
negative weights — comes back as ``+0.0``), on the device of the stored
values (``map_location``), so the result loads with ``strict=True`` into the
dense architecture.
"""
from collections import OrderedDict
from typing import Any, Dict, Mapping, Optional

import torch

SPARSE_FORMAT = 'mmsparse-sparse-state-dict-v1'
_TAG = '__mmsparse_sparse__'


ENCODINGS = ('bitmap', 'coo', 'delta')
#: Code width in bits to (largest gap of one code, storage dtype, offset).
_DELTA_CODES = {8: (255, torch.uint8, 0), 16: (65535, torch.int16, 32768)}


def pack_bits(mask: torch.Tensor) -> torch.Tensor:
    """Pack a boolean tensor into uint8 (8 entries per byte, flat order)."""
    flat = mask.flatten().to(torch.uint8)
    pad = (-flat.numel()) % 8
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    weights = 1 << torch.arange(8, dtype=torch.uint8, device=flat.device)
    return (flat.view(-1, 8) * weights).sum(1, dtype=torch.uint8)


def unpack_bits(packed: torch.Tensor, numel: int) -> torch.Tensor:
    """Inverse of :func:`pack_bits` (flat boolean tensor of ``numel``)."""
    shifts = torch.arange(8, dtype=torch.uint8, device=packed.device)
    bits = (packed.unsqueeze(1) >> shifts) & 1
    return bits.flatten()[:numel].bool()


def _gaps(indices: torch.Tensor) -> torch.Tensor:
    return torch.diff(indices, prepend=indices.new_full((1, ), -1))


def _delta_encode(indices: torch.Tensor, bits: int) -> torch.Tensor:
    """Sorted flat positions to gap codes with 0-code escapes."""
    largest, dtype, offset = _DELTA_CODES[bits]
    gaps = _gaps(indices)
    escapes = (gaps - 1) // largest
    codes = torch.zeros(int(escapes.sum()) + gaps.numel(), dtype=torch.long)
    ends = torch.cumsum(escapes + 1, 0) - 1
    codes[ends] = gaps - largest * escapes
    return (codes - offset).to(dtype)


def _delta_decode(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Inverse of :func:`_delta_encode` (int64 positions)."""
    largest, _, offset = _DELTA_CODES[bits]
    steps = codes.long() + offset
    value = steps != 0
    steps = torch.where(value, steps, torch.full_like(steps, largest))
    return (torch.cumsum(steps, 0) - 1)[value]


def _delta_size(indices: torch.Tensor, bits: int) -> int:
    if indices.numel() == 0:
        return 0
    largest = _DELTA_CODES[bits][0]
    codes = int(((_gaps(indices) - 1) // largest).sum()) + indices.numel()
    return codes * bits // 8


def _index_dtype(numel: int) -> torch.dtype:
    if numel <= torch.iinfo(torch.int16).max:
        return torch.int16
    if numel <= torch.iinfo(torch.int32).max:
        return torch.int32
    return torch.int64


def encode_tensor(tensor: torch.Tensor,
                  value_dtype: Optional[torch.dtype] = None) -> Any:
    """Encode one tensor in the smallest of dense / bitmap / coo / delta.

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
    positions = torch.nonzero(nonzero).flatten()
    nnz = positions.numel()
    vbytes = torch.empty((), dtype=dtype).element_size()
    idx_dtype = _index_dtype(numel)
    ibytes = torch.empty((), dtype=idx_dtype).element_size()
    sizes = dict(
        dense=numel * vbytes,
        bitmap=(numel + 7) // 8 + nnz * vbytes,
        coo=nnz * (ibytes + vbytes),
        delta8=_delta_size(positions, 8) + nnz * vbytes,
        delta16=_delta_size(positions, 16) + nnz * vbytes)
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
        out['bitmap'] = pack_bits(nonzero)
    elif best == 'coo':
        out['indices'] = positions.to(idx_dtype)
    else:
        out[_TAG] = 'delta'
        out['bits'] = int(best[5:])
        out['gaps'] = _delta_encode(positions, out['bits'])
    return out


def decode_tensor(obj: Any) -> Any:
    """Inverse of :func:`encode_tensor` (non-encoded objects pass through).

    Every tensor is created on the device of the stored values (where
    ``map_location`` put them). On the ``meta`` device, which holds no
    data, the result is a tensor of the right shape, dtype and device.
    """
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
    if kind not in ENCODINGS:
        raise ValueError(f'malformed sparse tensor: unknown encoding '
                         f'{kind!r} (allowed: {", ".join(ENCODINGS)})')
    values = obj['values'].to(dtype)
    device = values.device
    flat = torch.zeros(numel, dtype=dtype, device=device)
    if device.type == 'meta':
        return flat.view(shape)
    if kind == 'bitmap':
        mask = unpack_bits(obj['bitmap'].to(device), numel)
        if int(mask.sum()) != values.numel():
            raise ValueError('malformed sparse tensor: bitmap and values '
                             'disagree')
        flat[mask] = values
        return flat.view(shape)
    if kind == 'coo':
        idx = obj['indices'].to(device).long()
    else:
        bits = obj.get('bits', 8)
        if bits not in _DELTA_CODES:
            raise ValueError(f'malformed sparse tensor: delta code width '
                             f'{bits!r} (allowed: 8, 16)')
        idx = _delta_decode(obj['gaps'].to(device), bits)
    if (idx.numel() != values.numel() or (idx.numel() and (
            int(idx.min()) < 0 or int(idx.max()) >= numel))):
        raise ValueError('malformed sparse tensor: indices out of range '
                         'or not matching the values')
    flat[idx] = values
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
