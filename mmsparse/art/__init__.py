"""mmsparse.art (plain PyTorch, no OpenMMLab imports).

Adaptive Regularized Training with the HyperSparse loss (Glandorf et al.,
ICCV 2023 workshops, https://arxiv.org/abs/2308.07163) and the magnitude
pruning baselines: regularizers, schedules, global magnitude masks, the
sliding-window stop criterion.
"""
from .hypersparse import (HS_INFLECTION, REGULARIZERS, HyperSparseFunction,
                          check_regularizer, hypersparse_grad,
                          hypersparse_loss, hypersparse_scale,
                          hypersparse_stats, l1_loss, l2_loss,
                          regularization_loss, regularizer_stats)
from .magnitude import (MaskApplier, apply_masks_, check_sparsity,
                        flat_magnitudes, global_magnitude_masks, kth_smallest,
                        layers_above, magnitude_quantile, magnitude_threshold,
                        mask_optimizer_state_, mask_sparsity, masks_equal,
                        num_pruned, weight_sparsity)
from .prunable import DEFAULT_EXCLUDE, count_elements, prunable_weights
from .schedules import art_lambda, gmp_sparsity, step_decay_factor
from .window import SlidingWindow

__all__ = [
    'HS_INFLECTION', 'REGULARIZERS', 'HyperSparseFunction',
    'check_regularizer', 'hypersparse_grad', 'hypersparse_loss',
    'hypersparse_scale', 'hypersparse_stats', 'l1_loss', 'l2_loss',
    'regularization_loss', 'regularizer_stats', 'apply_masks_', 'check_sparsity',
    'flat_magnitudes', 'global_magnitude_masks', 'kth_smallest',
    'magnitude_quantile', 'magnitude_threshold', 'mask_optimizer_state_',
    'mask_sparsity', 'masks_equal', 'num_pruned', 'weight_sparsity',
    'MaskApplier', 'layers_above', 'DEFAULT_EXCLUDE', 'count_elements',
    'prunable_weights', 'art_lambda', 'gmp_sparsity',
    'step_decay_factor', 'SlidingWindow'
]
