"""Intra-block selection of P3B: which gate elements a sub-block keeps.

Inside one attention or MLP sub-block the elements of its three gates
(input / head or hidden / output) are ranked by their scores (Taylor
``(m * dL/dm) ** 2`` or weight magnitude), each gate's rank normalised to
(0, 1] and multiplied by its gate scale; the least important elements are
masked until the sub-block's parameter count meets its keep ratio.
"""
import itertools
from typing import Dict, List, Sequence, Tuple

import torch

from .adapter import BlockView
from .budget import choose_num_pruned, soft_mask
from .gates import ATTN_GATES, MLP_GATES, sub_block_params


def magnitude_scores(block: BlockView, is_mlp: bool) -> List[torch.Tensor]:
    """Weight norms of every gate element of one sub-block (the
    'magnitude' ablation of the Taylor scores), in gate order."""
    b = block
    with torch.no_grad():
        if not is_mlp:
            w_qkv = b.qkv.weight.view(3, b.num_heads, b.head_dims, -1)
            w_proj = b.proj.weight.view(-1, b.num_heads, b.head_dims)
            return [
                b.qkv.weight.norm(dim=0),
                (w_qkv.pow(2).sum((0, 1, 3)) +
                 w_proj.pow(2).sum((0, 1))).sqrt(),
                b.proj.weight.norm(dim=1)
            ]
        return [
            b.fc1.weight.norm(dim=0),
            (b.fc1.weight.pow(2).sum(1) +
             b.fc2.weight.pow(2).sum(0)).sqrt(),
            b.fc2.weight.norm(dim=1)
        ]


def round_counts(block: BlockView, is_mlp: bool, counts: List[int],
                 sizes: List[int], multiple: int, goal: float) -> List[int]:
    """Kept count per gate rounded (down or up) to ``multiple``; of the
    2 ** 3 roundings the one whose parameter count is closest to ``goal``.
    Empty gates stay empty, kept gates keep at least ``multiple``."""
    options = []
    for count, size in zip(counts, sizes):
        if count == 0:
            options.append([0])
            continue
        low = max(multiple, count // multiple * multiple)
        high = -(-count // multiple) * multiple
        options.append(sorted({min(low, size), min(high, size)}))
    best = min(itertools.product(*options), key=lambda c: abs(
        float(sub_block_params(block, is_mlp, *c)) - goal))
    return list(best)


def sub_block_masks(block: BlockView, is_mlp: bool,
                    scores: Sequence[torch.Tensor],
                    gate_scales: Dict[str, float], goal: float, tau: float,
                    multiple: int = 1,
                    carry: float = 0.0) -> Tuple[List[torch.Tensor], float]:
    """New gate values of one sub-block from its element scores.

    Args:
        block (BlockView): The encoder block.
        is_mlp (bool): The MLP sub-block (else the attention).
        scores (Sequence[Tensor]): One score per element of each of the
            three gates (CPU, float64), in gate order.
        gate_scales (dict): Factor on the normalised rank per gate name.
        goal (float): Parameters the sub-block should keep.
        tau (float): Soft-mask temperature (0 = hard).
        multiple (int): With hard masks, round every gate's kept count to a
            multiple of this (the rounding closest to the goal).
            Defaults to 1.
        carry (float): Parameters added to the rounding goal (the rounding
            error of the sub-blocks before, so that the total stays on
            budget). Defaults to 0.

    Returns:
        tuple[list[Tensor], float]: The values of the three gates (float64)
        and the goal plus carry minus the parameters kept (the rounding
        error).
    """
    names = MLP_GATES if is_mlp else ATTN_GATES
    ranks, ids = [], []
    for gid, (name, score) in enumerate(zip(names, scores)):
        order = torch.sort(score, stable=True).indices
        rank = torch.empty_like(score)
        rank[order] = torch.arange(1, len(score) + 1, dtype=score.dtype)
        ranks.append(gate_scales[name] * rank / len(score))
        ids.append(torch.full((len(score), ), gid))
    imp, ids = torch.cat(ranks), torch.cat(ids)
    order = torch.sort(imp, stable=True).indices
    pruned = torch.zeros(len(imp) + 1, 3, dtype=torch.float64)
    pruned[1:] = torch.nn.functional.one_hot(ids[order], 3).double() \
        .cumsum(0)
    sizes = torch.tensor([len(s) for s in scores], dtype=torch.float64)
    kept = sizes - pruned
    params = sub_block_params(block, is_mlp, kept[:, 0], kept[:, 1],
                              kept[:, 2])
    k, _ = choose_num_pruned(params, goal)
    values = torch.empty(len(imp), dtype=torch.float64)
    values[order] = soft_mask(len(imp), k, tau)
    values = list(values.split([len(s) for s in scores]))
    counts = kept[k].long().tolist()
    if tau <= 0 and multiple > 1:
        counts = round_counts(block, is_mlp, counts, sizes.long().tolist(),
                              multiple, goal + carry)
        for gid, count in enumerate(counts):
            top = torch.sort(ranks[gid], descending=True,
                             stable=True).indices[:count]
            values[gid] = torch.zeros_like(values[gid])
            values[gid][top] = 1.0
    error = goal + carry - float(sub_block_params(block, is_mlp, *counts))
    return values, error


__all__ = ['magnitude_scores', 'round_counts', 'sub_block_masks']
