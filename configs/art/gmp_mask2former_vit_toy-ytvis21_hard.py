# Baseline of the ART VIS experiment (projects/hypersparse/run_vis_toy.py):
# gradual magnitude pruning (cubic schedule, one global threshold) of the
# trained dense hard-toy model to 90 % over the first 60 % of a 400-iteration
# fine-tuning run (a pruning step every 20 iterations: 12 steps, the same
# share of the budget as ART's longest ART phase), then 160 iterations under
# the final mask. Every row of the experiment starts from the same dense
# checkpoint (load_from) and keeps the base's lr schedule (30-iteration
# warm-up, x0.1 at 80 % of the run); AdamW moments are kept at the last
# pruning step (the hook's default for GMP).
# Pruned: the ViT blocks only (see the note in the base config).
_base_ = './_base_/finetune_mask2former_vit_toy-ytvis21_hard.py'

custom_hooks = _base_.custom_hooks + [
    dict(
        type='GradualMagnitudePruningHook',
        target_sparsity=0.9,
        prune_only=_base_.vit_blocks,
        by_epoch=False,
        begin=0,
        end=240,
        interval=20)
]
