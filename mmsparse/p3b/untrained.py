"""A slim ViT without training: P3B's slimming path driven by random or magnitude scores.

Used by the speed benchmarks (the slim architecture's cost does not depend on which elements
were kept) and as the 'uniform keep ratio' structure with an element ranking that needs no data.
"""
import torch
import torch.nn as nn

from .pruner import P3BPruner, non_block_params

UNTRAINED_SCORES = ('random', 'magnitude')


def untrained_pruner(model: nn.Module,
                     keep_ratio: float,
                     score: str = 'random',
                     seed: int = 0,
                     width_multiple: int = 1) -> P3BPruner:
    """A finalized :class:`P3BPruner` at ``keep_ratio`` of the parameters, uniform per block.

    Its hard masks are on the model (``pruner.gated.active`` switches them); ``slim_arch()`` and
    ``slim_state_dict(model)`` give the slim ViT, ``remove()`` restores the dense model.

    Args:
        model (nn.Module): A ViT classifier that :class:`P3BPruner` accepts.
        keep_ratio (float): Fraction of the parameters to keep.
        score (str): Element ranking inside each block: 'random' (seeded) or 'magnitude'
            (weight norms). Defaults to 'random'.
        seed (int): Seed of the random scores. Defaults to 0.
        width_multiple (int): Round every kept width to a multiple of this. Defaults to 1.
    """
    if score not in UNTRAINED_SCORES:
        raise ValueError(f'untrained_pruner: score must be one of '
                         f'{UNTRAINED_SCORES}, got {score!r}')
    pruner = P3BPruner(
        model, 2, keep_ratio, start=0, sparse=1, final=2, interval=1,
        non_block_params=non_block_params(model), block_budget='uniform',
        element_score='magnitude' if score == 'magnitude' else 'taylor',
        width_multiple=width_multiple)
    if score == 'random':
        gen = torch.Generator().manual_seed(seed)
        for v in pruner.taylor.values():
            v.copy_(torch.rand(v.shape, generator=gen, dtype=v.dtype))
        pruner.taylor_count = torch.ones((), dtype=torch.float64)
    pruner.finalize(step=1)
    return pruner
