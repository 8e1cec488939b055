# Baseline of the ART VIS experiment (projects/hypersparse/run_vis_toy.py):
# one-shot global magnitude pruning of the trained dense hard-toy model to
# 90 % before the first step (prune_at=0), then the whole 400-iteration
# budget as fine-tuning under the fixed mask. Every row of the experiment
# starts from the same dense checkpoint (load_from) and keeps the base's lr
# schedule (30-iteration warm-up, x0.1 at 80 % of the run).
# Pruned: the ViT blocks only (see the note in the base config).
_base_ = './_base_/finetune_mask2former_vit_toy-ytvis21_hard.py'

custom_hooks = _base_.custom_hooks + [
    dict(
        type='OneShotMagnitudePruningHook',
        target_sparsity=0.9,
        prune_only=_base_.vit_blocks,
        by_epoch=False,
        prune_at=0)
]
