"""VPP's keep set beyond the backbone (plain PyTorch).

The backbone wrapper decides per frame which patches of the stride-16 grid
run through the deep blocks (the *keep set*). These helpers carry that set to
the multi-scale maps of a pixel decoder, so that the decoder updates only the
positions of the kept patches:

* :class:`KeepSetFeatures` is what the wrapper returns: the multi-scale
  feature maps (a tuple, as any backbone returns) plus the keep gate of every
  frame, the grid and the clip length;
* :func:`carry_gate` maps the stride-16 gate to a feature map of any size
  (nearest for finer maps, max-pool for coarser ones), after an optional
  dilation margin;
* :func:`padded_indices` turns per-row masks with different counts into one
  index tensor, so that a batch of frames gathers and scatters at once.

A *gate* is a float tensor whose forward value is 0/1 (1 = update). In
training it is the backbone's straight-through gate, so a loss on the
decoder's output reaches the selector through it.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F


class KeepSetFeatures(tuple):
    """Multi-scale features of a batch of frames and their keep set.

    A tuple of the backbone's feature maps, so every consumer of a backbone
    output works unchanged; a consumer that knows the keep set reads the
    attributes.

    Args:
        feats (Sequence[Tensor]): Feature maps, each (B*T, C, h, w).
        keep (Tensor, optional): (B*T, h16 * w16) float gate of the patch
            grid, 1 = the patch ran through the pruned blocks. Rows of dense
            frames are all ones. None = every frame dense.
        hw (tuple[int, int], optional): The patch grid (h16, w16).
        clip_len (int): Frames per clip T; the batch is ordered
            ``[c0f0, c0f1, ..., c1f0, ...]``. Defaults to 1.
    """

    def __new__(cls,
                feats: Sequence[torch.Tensor],
                keep: Optional[torch.Tensor] = None,
                hw: Optional[Tuple[int, int]] = None,
                clip_len: int = 1):
        obj = super().__new__(cls, feats)
        if keep is not None:
            if hw is None or keep.dim() != 2 or keep.shape[1] != hw[0] * hw[1]:
                raise ValueError(
                    f'KeepSetFeatures: keep must be (frames, h*w) with the '
                    f'grid hw, got keep {tuple(keep.shape)} and hw {hw}')
            if clip_len < 1 or keep.shape[0] % clip_len:
                raise ValueError(
                    f'KeepSetFeatures: {keep.shape[0]} frames are not a '
                    f'whole number of clips of clip_len={clip_len}')
        obj.keep = keep
        obj.hw = hw
        obj.clip_len = clip_len
        return obj

    def __reduce__(self):
        return (type(self), (tuple(self), self.keep, self.hw, self.clip_len))


def dilate_gate(gate: torch.Tensor, hw: Tuple[int, int],
                margin: int) -> torch.Tensor:
    """Grow the kept region by ``margin`` cells (a (2m+1)^2 max filter).

    Args:
        gate (Tensor): (B, h * w) gate.
        hw (tuple): Grid (h, w).
        margin (int): Cells added on every side; 0 returns ``gate``.

    Returns:
        Tensor: (B, h * w).
    """
    if margin == 0:
        return gate
    B = gate.shape[0]
    g = gate.reshape(B, 1, *hw)
    g = F.max_pool2d(g, 2 * margin + 1, stride=1, padding=margin)
    return g.reshape(B, -1)


def carry_gate(gate: torch.Tensor, hw: Tuple[int, int],
               size: Tuple[int, int]) -> torch.Tensor:
    """The gate of the ``hw`` grid on a map of ``size``.

    A finer map takes the gate of the patch each position lies in (nearest),
    a coarser map keeps a position when any patch it covers is kept
    (adaptive max-pool). Both pass gradients to the gate.

    Args:
        gate (Tensor): (B, h * w) gate.
        hw (tuple): Its grid (h, w).
        size (tuple): The map (H, W).

    Returns:
        Tensor: (B, H * W).
    """
    B = gate.shape[0]
    g = gate.reshape(B, 1, *hw)
    if tuple(size) == tuple(hw):
        out = g
    elif size[0] >= hw[0] and size[1] >= hw[1]:
        out = F.interpolate(g, size=tuple(size), mode='nearest')
    else:
        out = F.adaptive_max_pool2d(g, tuple(size))
    return out.reshape(B, -1)


def level_gates(gate: torch.Tensor, hw: Tuple[int, int],
                sizes: Sequence[Tuple[int, int]],
                margin: int = 0) -> torch.Tensor:
    """The gate on a concatenation of maps (a multi-scale token sequence).

    Args:
        gate (Tensor): (B, h * w) gate of the patch grid.
        hw (tuple): The patch grid (h, w).
        sizes (Sequence[tuple]): (H, W) of each map, in sequence order.
        margin (int): Dilation of the gate on the patch grid first.
            Defaults to 0.

    Returns:
        Tensor: (B, sum H*W).
    """
    gate = dilate_gate(gate, hw, margin)
    return torch.cat([carry_gate(gate, hw, s) for s in sizes], dim=1)


def padded_indices(mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Indices of the True entries of every row, padded to one length.

    Args:
        mask (Tensor): (B, M) bool.

    Returns:
        tuple: ``idx`` (B, K) long, K the largest row count (at least 1),
        ascending per row; rows with fewer entries are padded with their
        first index (a duplicate, so a per-position computation gives the
        same value twice), rows without any with 0. ``valid`` (B, K) bool,
        False at padding.
    """
    B, M = mask.shape
    counts = mask.sum(1)
    K = max(int(counts.max()) if B else 0, 1)
    # stable sort: True entries first, in ascending index order
    order = torch.argsort((~mask).to(torch.uint8), dim=1, stable=True)
    idx = order[:, :K]
    valid = torch.arange(K, device=mask.device)[None] < counts[:, None]
    return torch.where(valid, idx, idx[:, :1]), valid


def gather_rows(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``x[b, idx[b]]`` for (B, M, ...) and (B, K) -> (B, K, ...)."""
    shape = idx.shape + x.shape[2:]
    expanded = idx.reshape(idx.shape + (1, ) * (x.dim() - 2)).expand(shape)
    return x.gather(1, expanded)


def scatter_rows(full: torch.Tensor, idx: torch.Tensor, valid: torch.Tensor,
                 x: torch.Tensor) -> torch.Tensor:
    """A copy of ``full`` (B, M, C) with ``x`` (B, K, C) written at ``idx``.

    Indices from :func:`padded_indices`: a padding entry repeats its row's
    first index and writes the same value as that entry; in a row without
    any entry it writes back what ``full`` holds. So padding never changes
    the result, whatever ``x`` holds there.
    """
    x = x.to(full.dtype)
    x = torch.where(valid[..., None], x, x[:, :1])
    empty = ~valid[:, :1, None]
    x = torch.where(empty, gather_rows(full, idx), x)
    return full.scatter(1, idx[..., None].expand(-1, -1, full.shape[-1]), x)


def split_sizes(sizes: Sequence[Tuple[int, int]]) -> List[int]:
    """Positions per map: ``[H*W, ...]``."""
    return [int(h) * int(w) for h, w in sizes]


def masked_group_norm(x: torch.Tensor, mask: torch.Tensor, num_groups: int,
                      weight: Optional[torch.Tensor],
                      bias: Optional[torch.Tensor],
                      eps: float = 1e-5) -> torch.Tensor:
    """Group norm of (B, P, C) positions with statistics over ``mask`` only.

    With every position in ``mask`` it is ``F.group_norm`` of the map; with
    a subset, the statistics of the positions that are really computed, so
    that a map updated only at kept positions normalises the same way in
    training (all computed, masked statistics) and at inference (only the
    kept ones computed).

    Args:
        x (Tensor): (B, P, C) features.
        mask (Tensor): (B, P) bool, positions that enter the statistics.
        num_groups (int): Channel groups.
        weight (Tensor, optional): (C,) affine scale.
        bias (Tensor, optional): (C,) affine shift.
        eps (float): Added to the variance. Defaults to 1e-5.

    Returns:
        Tensor: (B, P, C), normalised at every position.
    """
    B, P, C = x.shape
    xg = x.float().reshape(B, P, num_groups, C // num_groups)
    w = mask.to(xg.dtype)[:, :, None, None]
    count = (w.sum(1) * (C // num_groups)).clamp(min=1)  # (B, 1, 1)
    mean = (xg * w).sum((1, 3), keepdim=True) / count[:, None]
    var = ((xg - mean).square() * w).sum((1, 3), keepdim=True) / count[:, None]
    out = ((xg - mean) * torch.rsqrt(var + eps)).reshape(B, P, C)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out.to(x.dtype)


def conv3x3_at(x: torch.Tensor, idx: torch.Tensor,
               weight: torch.Tensor,
               bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """A 3x3 convolution (stride 1, zero padding 1) at chosen positions.

    Gathers the 3x3 neighbourhood of every position in ``idx`` and
    multiplies it with the kernel: the work grows with the positions, not
    with the map.

    Args:
        x (Tensor): (B, C, H, W) input map.
        idx (Tensor): (B, K) positions (row-major ``r * W + c``).
        weight (Tensor): (C_out, C, 3, 3) kernel.
        bias (Tensor, optional): (C_out,).

    Returns:
        Tensor: (B, K, C_out), equal to ``F.conv2d(x, weight, bias,
        padding=1)`` at those positions.
    """
    B, C, H, W = x.shape
    padded = F.pad(x, (1, 1, 1, 1)).flatten(2).transpose(1, 2)  # B, P', C
    r, c = idx // W, idx % W
    centre = (r + 1) * (W + 2) + (c + 1)  # B, K
    offsets = torch.tensor([dr * (W + 2) + dc for dr in (-1, 0, 1)
                            for dc in (-1, 0, 1)], device=x.device)
    neigh = (centre[..., None] + offsets).flatten(1)  # B, K * 9
    patches = gather_rows(padded, neigh).reshape(B, idx.shape[1], 9 * C)
    kernel = weight.permute(0, 2, 3, 1).reshape(weight.shape[0], 9 * C)
    return F.linear(patches, kernel, bias)
