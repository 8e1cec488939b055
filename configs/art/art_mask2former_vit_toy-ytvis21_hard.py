# ART + HyperSparse to 90 % on the hard toy VIS set, from the trained dense
# model (projects/hypersparse/run_vis_toy.py: every row of that experiment
# fine-tunes the same dense checkpoint, load_from, for the same 400
# iterations with the base's lr schedule: 30-iteration warm-up, x0.1 at 80 %).
#
# Phases scaled to the budget: no dense warm-up (the model is trained); an ART
# step every 10 iterations (24 steps at most); the switch when the pruned copy
# beats the dense model on the criterion, forced when 160 iterations (40 %)
# are left; then fine-tuning of the best pruned model of the window under the
# fixed mask (AdamW moments cleared at the switch: they hold λ·∇R).
# Criterion: a VIS model has no accuracy, so the task loss of the
# magnitude-pruned copy on 4 fixed training batches (8 clips), compared with
# the dense model on the same batches (dense_reference='eval'; the running
# training loss is measured on other, augmented batches, a difference the
# criterion cannot tell from pruning damage).
#
# Pruned: the ViT blocks only (see the note in the base config).
#
# λ0 and η for AdamW. AdamW divides each weight's gradient by √v̂ (the RMS of
# that weight's recent gradients), so the size of λ·∇R matters only relative
# to the task gradient of the same weight: with ρ_i = |∂R/∂w_i| / √v̂_i (v̂ of
# the task gradient alone) the regularizer takes over weight i once λ·ρ_i
# passes ~1; beyond that the weight shrinks by ~lr per iteration whatever λ
# is (the update saturates at the step size) unless a consistent task
# gradient holds it. HyperSparse's ∂R/∂w_i = sign(w_i)·gain·sech²(s|w_i|) is
# largest for the small weights, so ART selects in the λ range between
# λ·ρ ~ 1 at the small weights and at the large ones. The global norm is a
# poor guide here: the task gradient is always clipped to norm 1 (~100
# before clipping; λ·∇R is added after clipping, clip_regularizer=False) and
# most of it sits in the head, so the backbone's weights see λ·ρ >> 1 while
# λ·‖∇R‖ (logged as art_reg_grad) is still below 1.
# `python projects/hypersparse/run_vis_toy.py --calibrate` measures ρ on the
# dense checkpoint (√v̂ from its saved AdamW state). On the dense checkpoint
# (iter_2000.pth): q_κ(|w|) = 0.034, gain 1.10, ‖∇R‖ = 1585; median
# ρ = 1.5e4 below the κ-quantile (λ·ρ = 1 at λ = 6.8e-5) and 8.3e3 for the
# largest 10 % (λ = 1.2e-4); at iterations 250 and 1000 the same within 1.6x.
# Choice: λ0 = 1e-5 puts the median small weight at λ·ρ ~ 0.15 (the task
# gradient dominates: exploration); η = 1.18 per step grows λ 45x over 24
# steps, to λ·ρ ~ 6.6 at the small weights and ~3.7 at the large ones at the
# forced switch (λ·‖∇R‖ 0.016 -> 0.71); the small weights pass λ·ρ = 1 at
# step ~12 (iteration ~120), leaving ~120 iterations in which they shrink by
# up to ~lr = 3e-4 each, about the size of the κ-quantile (0.034).
_base_ = './_base_/finetune_mask2former_vit_toy-ytvis21_hard.py'

custom_hooks = _base_.custom_hooks + [
    dict(
        type='ARTHook',
        target_sparsity=0.9,
        regularizer='hypersparse',
        prune_only=_base_.vit_blocks,
        by_epoch=False,
        warmup=0,
        interval=10,
        lambda_init=1e-5,
        eta=1.18,
        criterion='loss',
        dense_reference='eval',
        clip_regularizer=False,
        eval_batches=4,
        min_finetune=160)
]
