# ART + HyperSparse on the toy VIS config (CPU-sized Mask2Former with a
# 6-block ViT, iteration-based, 300 iterations). One delta: the hook (the
# base's custom hook is restated because lists are replaced on inheritance).
# An ART step every 10 iterations after 100 dense warm-up iterations, the
# switch at the latest when 100 iterations are left; the stop criterion
# compares the loss of the magnitude-pruned copy on 4 fixed training batches
# with the running training loss of the step, because a VIS model has no
# accuracy. λ0/η are untuned guesses for AdamW at this scale. The base's lr
# schedule stays (warm-up, x0.1 at 80 % of the run).
# clip_regularizer=False: λ·∇R is added after the gradient clipping
# (max_norm 1.0), so clipping bounds the task gradient only
# (projects/hypersparse/measure_reg_grad_vs_clip.py measures both norms).
# Pruned: the linear weights of the ViT blocks only (prune_only=backbone.blocks,
# minus the hooks' default exclusions). With the defaults alone
# one global magnitude threshold also spans the pyramid and the head, whose
# Xavier/Kaiming-initialised weights are ~3x larger than the ViT blocks'
# (trunc-normal 0.02): at 90 % every ViT block is then pruned to > 99 % and
# the backbone no longer sees the image (measured on the toy model, see
# configs/art/_base_/finetune_mask2former_vit_toy-ytvis21_hard.py).
_base_ = '../toy/mask2former_vit_toy-ytvis21.py'

custom_hooks = _base_.custom_hooks + [
    dict(
        type='ARTHook',
        target_sparsity=0.9,
        regularizer='hypersparse',
        prune_only=['^backbone\\.blocks\\.'],
        by_epoch=False,
        warmup=100,
        interval=10,
        lambda_init=1e-5,
        eta=1.3,
        criterion='loss',
        clip_regularizer=False,
        eval_batches=4,
        min_finetune=100)
]
