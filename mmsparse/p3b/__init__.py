"""mmsparse.p3b: Pruning by Block Benefit (plain PyTorch, no OpenMMLab).

Glandorf & Rosenhahn, https://arxiv.org/abs/2506.23675.
"""
from .adapter import BlockView, ViTView, find_backbone, vit_view
from .budget import (choose_num_pruned, ramp_keep_ratios, soft_mask,
                     solve_keep_ratios, temperature, transform_benefit)
from .gates import (ATTN_GATES, GATE_NAMES, MLP_GATES, GatedViT, attn_params,
                    dense_sub_block_params, mlp_params)
from .probes import (PROBE_DESIGNS, CheapProbeBank, ProbeBank, ProbeHead,
                     build_probes)
from .pruner import (BLOCK_BUDGETS, DEFAULT_GATE_SCALES, ELEMENT_SCORES,
                     P3BPruner, check_keep_ratio, check_probe_args,
                     check_schedule, count_params, non_block_params)
from .slim import SlimAttention, SlimBlock, SlimMlp, slice_block, slim_dims
from .untrained import UNTRAINED_SCORES, untrained_pruner

__all__ = [
    'BlockView', 'ViTView', 'find_backbone', 'vit_view', 'choose_num_pruned',
    'ramp_keep_ratios', 'soft_mask', 'solve_keep_ratios', 'temperature',
    'transform_benefit', 'ATTN_GATES', 'GATE_NAMES', 'MLP_GATES', 'GatedViT',
    'attn_params', 'dense_sub_block_params', 'mlp_params', 'ProbeBank',
    'ProbeHead', 'CheapProbeBank', 'PROBE_DESIGNS', 'build_probes',
    'check_probe_args', 'BLOCK_BUDGETS', 'DEFAULT_GATE_SCALES', 'ELEMENT_SCORES',
    'P3BPruner', 'check_keep_ratio', 'check_schedule', 'count_params',
    'non_block_params', 'SlimAttention', 'SlimBlock', 'SlimMlp',
    'slice_block', 'slim_dims', 'UNTRAINED_SCORES', 'untrained_pruner'
]
