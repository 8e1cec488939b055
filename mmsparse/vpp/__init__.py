"""mmsparse.vpp: Video Patch Pruning (plain PyTorch, no OpenMMLab imports).

Glandorf et al., "Video Patch Pruning: Efficient Video Instance Segmentation
via Early Token Reduction", https://arxiv.org/abs/2604.00827.
"""
from .clip_order import CLIP_ORDERS, clip_run_order
from .mapping import TemporalMapping, manhattan_prior
from .pruner import SELECTORS, FramePrior, FrameStats, VideoPatchPruner
from .schedule import (check_schedule, patch_keep_ratio, schedule_pkr,
                       tokens_per_block)
from .selectors import RandomScore, ScoreHead, smooth_logits
from .tokens import (gather_tokens, indices_to_mask, num_keep, scatter_tokens,
                     straight_through, token_positions, topk_indices,
                     topk_keep_mask)

__all__ = [
    'CLIP_ORDERS', 'clip_run_order', 'TemporalMapping', 'manhattan_prior',
    'SELECTORS', 'FramePrior', 'FrameStats', 'VideoPatchPruner',
    'check_schedule', 'patch_keep_ratio',
    'schedule_pkr', 'tokens_per_block', 'RandomScore', 'ScoreHead',
    'smooth_logits', 'gather_tokens', 'indices_to_mask', 'num_keep',
    'scatter_tokens', 'straight_through', 'token_positions', 'topk_indices',
    'topk_keep_mask'
]
