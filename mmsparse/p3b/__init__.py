"""mmsparse.p3b: Pruning by Block Benefit (plain PyTorch, no OpenMMLab).

Glandorf & Rosenhahn, https://arxiv.org/abs/2506.23675.
"""
from .adapter import BlockView, ViTView, find_backbone, vit_view
from .budget import (choose_num_pruned, ramp_keep_ratios, soft_mask,
                     solve_keep_ratios, temperature, transform_benefit)
from .checks import (BLOCK_BUDGETS, ELEMENT_SCORES, check_ablation_args,
                     check_keep_ratio, check_num_classes, check_probe_args,
                     check_width_multiple)
from .elements import magnitude_scores, round_counts, sub_block_masks
from .export import finetune_config_text, max_slim_difference, slim_model_cfg
from .gates import (ATTN_GATES, GATE_NAMES, MLP_GATES, GatedViT, attn_params,
                    dense_sub_block_params, mlp_params)
from .history import format_update, save_history, update_record
from .probes import (PROBE_DESIGNS, CheapProbeBank, ProbeBank, ProbeHead,
                     build_probes)
from .pruner import (DEFAULT_GATE_SCALES, P3BPruner, check_pruner_settings,
                     count_params, non_block_params)
from .schedule import (check_schedule, in_probe_window, is_update_step,
                       schedule_in_iterations)
from .slim import SlimAttention, SlimBlock, SlimMlp, slice_block, slim_dims
from .untrained import UNTRAINED_SCORES, untrained_pruner

__all__ = [
    'BlockView', 'ViTView', 'find_backbone', 'vit_view', 'choose_num_pruned',
    'ramp_keep_ratios', 'soft_mask', 'solve_keep_ratios', 'temperature',
    'transform_benefit', 'BLOCK_BUDGETS', 'ELEMENT_SCORES',
    'check_ablation_args', 'check_keep_ratio', 'check_num_classes',
    'check_probe_args', 'check_width_multiple', 'magnitude_scores',
    'round_counts', 'sub_block_masks', 'finetune_config_text',
    'max_slim_difference', 'slim_model_cfg', 'ATTN_GATES', 'GATE_NAMES',
    'MLP_GATES', 'GatedViT', 'attn_params', 'dense_sub_block_params',
    'mlp_params', 'format_update', 'save_history', 'update_record',
    'ProbeBank', 'ProbeHead', 'CheapProbeBank', 'PROBE_DESIGNS',
    'build_probes', 'DEFAULT_GATE_SCALES', 'P3BPruner',
    'check_pruner_settings', 'count_params',
    'non_block_params', 'check_schedule', 'in_probe_window',
    'is_update_step', 'schedule_in_iterations', 'SlimAttention', 'SlimBlock',
    'SlimMlp', 'slice_block', 'slim_dims', 'UNTRAINED_SCORES',
    'untrained_pruner'
]
