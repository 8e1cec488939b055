"""Token bookkeeping for patch pruning: keep counts, top-k, gather/scatter.

Conventions used across :mod:`mmsparse.vpp`:

* a frame's tokens are ``(B, E + N, C)``: ``E`` extra tokens (the class
  token) first, then the ``N = h * w`` patch tokens in row-major grid order;
* a *selection* is a set of grid indices ``(B, k)`` (sorted ascending, so
  kept tokens keep their grid order) or the equivalent boolean keep mask
  ``(B, N)``. Extra tokens are never pruned.
"""
import torch


def num_keep(num_tokens: int, keep_ratio: float) -> int:
    """Number of patches a keep ratio keeps: ``round(keep_ratio * N)``.

    Rounded (not floored) so that e.g. ``0.7 * 240`` keeps 168 patches and
    not 167; at least one patch is always kept.

    Args:
        num_tokens (int): Patches on the grid (N).
        keep_ratio (float): Fraction of the grid to keep, in (0, 1].

    Returns:
        int: k with ``1 <= k <= N``.
    """
    return max(1, min(num_tokens, int(round(keep_ratio * num_tokens))))


def topk_keep_mask(scores: torch.Tensor,
                   k: int,
                   valid: torch.Tensor = None) -> torch.Tensor:
    """Hard 0/1 mask of the ``k`` highest scores per row.

    Args:
        scores (Tensor): (B, N) scores, higher = keep.
        k (int): Patches kept per row.
        valid (Tensor, optional): (B, N) bool; invalid entries are never
            chosen (patches pruned at an earlier stage). Each row must hold
            at least ``k`` valid entries. Defaults to None.

    Returns:
        Tensor: (B, N) float mask with exactly ``k`` ones per row.
    """
    scores = scores.detach()
    if valid is not None:
        scores = scores.masked_fill(~valid, float('-inf'))
    idx = scores.topk(k, dim=1, sorted=False).indices
    return torch.zeros_like(scores).scatter_(1, idx, 1.0)


def straight_through(hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """Straight-through estimator ``hard - soft.detach() + soft``.

    The forward value is ``hard``; the gradient flows into ``soft``.
    """
    return hard - soft.detach() + soft


def topk_indices(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` highest scores per row, sorted ascending.

    Sorting keeps the kept tokens in grid order, so that gathering, running
    blocks and scattering back never permutes the grid.

    Args:
        scores (Tensor): (B, M) scores.
        k (int): Entries kept per row.

    Returns:
        Tensor: (B, k) long indices into the M entries.
    """
    idx = scores.topk(k, dim=1, sorted=False).indices
    return idx.sort(dim=1).values


def token_positions(grid_idx: torch.Tensor, num_extra: int) -> torch.Tensor:
    """Token positions (extra tokens first) of kept grid indices.

    Args:
        grid_idx (Tensor): (B, k) grid indices.
        num_extra (int): Extra tokens at the front (E).

    Returns:
        Tensor: (B, E + k) positions into the (B, E + N) token sequence.
    """
    B = grid_idx.shape[0]
    extra = torch.arange(num_extra, device=grid_idx.device)
    return torch.cat([extra.expand(B, -1), grid_idx + num_extra], dim=1)


def gather_tokens(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """``x[b, pos[b]]``: (B, L, C), (B, M) -> (B, M, C)."""
    return x.gather(1, pos.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def scatter_tokens(full: torch.Tensor, pos: torch.Tensor,
                   x: torch.Tensor) -> torch.Tensor:
    """Write ``x`` back at ``pos`` into a copy of ``full``.

    Positions not in ``pos`` keep the values of ``full``: for a pruned patch
    that is its token from the layer where it was pruned (the fill-back).

    Args:
        full (Tensor): (B, L, C) full token sequence.
        pos (Tensor): (B, M) positions.
        x (Tensor): (B, M, C) new values.

    Returns:
        Tensor: (B, L, C).
    """
    return full.scatter(1, pos.unsqueeze(-1).expand(-1, -1, full.shape[-1]),
                        x)


def indices_to_mask(grid_idx: torch.Tensor, num_tokens: int) -> torch.Tensor:
    """(B, k) kept grid indices -> (B, N) bool keep mask."""
    mask = torch.zeros(
        grid_idx.shape[0], num_tokens, dtype=torch.bool,
        device=grid_idx.device)
    return mask.scatter_(1, grid_idx, torch.ones_like(mask[:, :1]).expand_as(
        grid_idx))
