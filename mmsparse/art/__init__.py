"""mmsparse.art (plain PyTorch, no OpenMMLab imports).

Adaptive Regularized Training with the HyperSparse loss (Glandorf et al.,
ICCV 2023 workshops, https://arxiv.org/abs/2308.07163) and the magnitude
pruning baselines: regularizers and the hooks that add them to training,
schedules, ART's phases and stop criterion, global magnitude masks and
training under them, rollback snapshots, checkpoint state helpers, what a
run reports (log lines, PNG plots).
"""
from .arguments import (check_bool, check_choice, check_finite_above,
                        check_int, check_optional_int, check_patterns,
                        named_errors, prefixed)
from .controller import ARTController
from .criterion_scores import (CRITERIA, DENSE_REFERENCES, CriterionScores,
                               resolve_criterion, train_score)
from .finetune_lr import FinetuneLRDecay
from .hypersparse import (HS_INFLECTION, REGULARIZERS, HyperSparseFunction,
                          check_regularizer, hypersparse_grad,
                          hypersparse_loss, hypersparse_scale,
                          hypersparse_stats, l1_loss, l2_loss,
                          regularization_loss, regularizer_stats)
from .layer_guard import LayerDensityGuard
from .magnitude import (MaskApplier, apply_masks_, check_sparsity,
                        flat_magnitudes, global_magnitude_masks, kth_smallest,
                        layers_above, magnitude_quantile, magnitude_threshold,
                        mask_optimizer_state_, mask_sparsity, masks_equal,
                        num_pruned, weight_sparsity)
from .masked_pruning import MaskedPruning
from .masked_training import MaskedTraining
from .phases import PHASES, ARTPhases
from .prunable import (DEFAULT_EXCLUDE, collect_prunable, count_elements,
                       prunable_weights)
from .regularizer_hooks import RegularizerHooks
from .reporting import (NEVER_PRUNED, ClipWatch, event_line, settings_line,
                        step_line, step_scalars, switch_line)
from .run_plots import RunPlots
from .schedules import (art_lambda, gmp_sparsity, gmp_step_sparsity,
                        step_decay_factor)
from .snapshots import SnapshotWindow, pruned_snapshot, restore_snapshot
from .state_io import pack_masks, to_cpu, unpack_masks
from .window import SlidingWindow

__all__ = [
    'check_bool', 'check_choice', 'check_finite_above', 'check_int',
    'check_optional_int', 'check_patterns', 'named_errors', 'prefixed',
    'ARTController', 'CRITERIA',
    'DENSE_REFERENCES', 'CriterionScores', 'resolve_criterion', 'train_score',
    'FinetuneLRDecay', 'HS_INFLECTION', 'REGULARIZERS', 'HyperSparseFunction',
    'check_regularizer', 'hypersparse_grad', 'hypersparse_loss',
    'hypersparse_scale', 'hypersparse_stats', 'l1_loss', 'l2_loss',
    'regularization_loss', 'regularizer_stats', 'LayerDensityGuard',
    'apply_masks_', 'check_sparsity', 'flat_magnitudes',
    'global_magnitude_masks', 'kth_smallest', 'magnitude_quantile',
    'magnitude_threshold', 'mask_optimizer_state_', 'mask_sparsity',
    'masks_equal', 'num_pruned', 'weight_sparsity', 'MaskApplier',
    'layers_above', 'MaskedPruning', 'MaskedTraining', 'PHASES', 'ARTPhases',
    'DEFAULT_EXCLUDE', 'collect_prunable', 'count_elements',
    'prunable_weights', 'RegularizerHooks', 'NEVER_PRUNED', 'ClipWatch',
    'event_line', 'settings_line', 'step_line', 'step_scalars', 'switch_line',
    'RunPlots', 'art_lambda', 'gmp_sparsity', 'gmp_step_sparsity',
    'step_decay_factor', 'SnapshotWindow', 'pruned_snapshot',
    'restore_snapshot', 'pack_masks', 'to_cpu', 'unpack_masks',
    'SlidingWindow'
]
