"""Keep schedule (where to prune, how much) and the patch keep ratio (PKR).

A schedule is one or more *stages* ``(prune_layer, keep_ratio)``: the patches
entering block ``prune_layer`` are reduced to ``keep_ratio`` of the full
grid, and blocks ``prune_layer..`` run on the kept patches only (until the
next stage). The paper's ViT-S schedule is
``prune_layer=[1, 3, 6, 9]``, ``keep_ratio=[0.7, 0.56, 0.448, 0.358]``.

The PKR (Glandorf et al., https://arxiv.org/abs/2604.00827) is the mean over
all ``L`` blocks of the fraction of patches each block processes:

.. math::

    \\mathrm{PKR} = \\frac{1}{L} \\sum_{l=0}^{L-1} \\frac{n_l}{N}.
"""
from numbers import Real
from typing import List, Sequence, Tuple, Union

from .tokens import num_keep


def _as_tuple(value, name: str, owner: str) -> tuple:
    if isinstance(value, (list, tuple)):
        if len(value) == 0:
            raise ValueError(f'{owner}: {name} must not be empty')
        return tuple(value)
    return (value, )


def check_schedule(keep_ratio: Union[float, Sequence[float]],
                   prune_layer: Union[int, Sequence[int]],
                   num_layers: int,
                   owner: str = 'check_schedule'
                   ) -> Tuple[Tuple[float, ...], Tuple[int, ...]]:
    """Validate a keep schedule against a backbone of ``num_layers`` blocks.

    Args:
        keep_ratio (float | Sequence[float]): Fraction of all patches kept
            from each stage on, in (0, 1], strictly decreasing over stages.
            A single 1.0 means dense.
        prune_layer (int | Sequence[int]): Block index where each stage
            prunes, in [0, num_layers - 1], strictly increasing; as many as
            keep ratios.
        num_layers (int): Blocks of the backbone.
        owner (str): Name the error messages start with (the class that
            checks its arguments). Defaults to 'check_schedule'.

    Returns:
        tuple: (keep_ratios, prune_layers) as tuples.
    """
    ratios = _as_tuple(keep_ratio, 'keep_ratio', owner)
    layers = _as_tuple(prune_layer, 'prune_layer', owner)
    for r in ratios:
        if isinstance(r, bool) or not isinstance(r, Real) or not 0 < r <= 1:
            raise ValueError(f'{owner}: keep_ratio must be in (0, 1] (one '
                             f'value or one per stage), got {keep_ratio!r}')
    for layer in layers:
        if isinstance(layer, bool) or not isinstance(layer, int) \
                or not 0 <= layer < num_layers:
            raise ValueError(
                f'{owner}: prune_layer must be an int in '
                f'[0, {num_layers - 1}] (the backbone has {num_layers} '
                f'blocks), got {prune_layer!r}')
    if len(ratios) != len(layers):
        raise ValueError(f'{owner}: keep_ratio {keep_ratio!r} and '
                         f'prune_layer {prune_layer!r} must have the same '
                         'length')
    if any(b <= a for a, b in zip(layers, layers[1:])):
        raise ValueError(f'{owner}: prune_layer must be strictly '
                         f'increasing, got {prune_layer!r}')
    if any(b >= a for a, b in zip(ratios, ratios[1:])):
        raise ValueError(f'{owner}: keep_ratio must be strictly decreasing '
                         f'over stages, got {keep_ratio!r}')
    if len(ratios) > 1 and ratios[0] == 1:
        raise ValueError(f'{owner}: keep_ratio 1.0 in a multi-stage schedule '
                         f'is a stage that prunes nothing; drop it: '
                         f'{keep_ratio!r}')
    return tuple(float(r) for r in ratios), layers


def tokens_per_block(num_tokens: int, keep_ratios: Sequence[float],
                     prune_layers: Sequence[int],
                     num_layers: int) -> List[int]:
    """Patches each block processes under a schedule (exact top-k counts)."""
    counts, n = [], num_tokens
    stage = dict(zip(prune_layers, keep_ratios))
    for i in range(num_layers):
        if i in stage:
            n = num_keep(num_tokens, stage[i])
        counts.append(n)
    return counts


def patch_keep_ratio(counts: Sequence[int], num_tokens: int) -> float:
    """PKR: mean over blocks of processed patches / all patches."""
    if not counts:
        raise ValueError('patch_keep_ratio: no blocks')
    return sum(counts) / (len(counts) * num_tokens)


def schedule_pkr(keep_ratios: Sequence[float], prune_layers: Sequence[int],
                 num_layers: int, num_tokens: int = 10000) -> float:
    """PKR of a schedule on a pruned frame (large grid: rounding-free)."""
    return patch_keep_ratio(
        tokens_per_block(num_tokens, keep_ratios, prune_layers, num_layers),
        num_tokens)
