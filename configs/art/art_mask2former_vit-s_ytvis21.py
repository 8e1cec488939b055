# ART + HyperSparse on Mask2Former-VIS with a ViT-S/16 backbone (YouTube-VIS
# 2021, iteration-based, 8,000 iterations). The backbone is pretrained
# (DeiT-S) but the head starts from scratch, so 2,000 dense warm-up
# iterations precede ART. One ART step per 250 iterations (λ grows by η per
# step), the criterion on the loss of 50 fixed training batches per GPU; at
# the latest 3,000 iterations are left for fine-tuning under the mask. The
# base's lr schedule (x0.1 at 5,500) is kept. λ0/η are untuned guesses
# (AdamW, wd 0.05): watch λ, the pruned vs dense loss in the log and
# <work_dir>/plots/art_curves.png.
# clip_regularizer=False: the base clips the gradient at max_norm 0.01, but
# λ0·‖∇R‖ over the ViT blocks alone is 0.044 at initialisation and ~0.33 at
# the largest λ of this schedule (projects/hypersparse/measure_reg_grad_vs_clip.py
# --static), so clipping the sum would shrink the task gradient 4-33x; λ·∇R is added
# after clipping instead. The patch embedding (and VPP's pruner, if present)
# stays dense (outside prune_only, and in the default exclusions).
# Pruned: the linear weights of the ViT blocks only (prune_only=backbone.blocks,
# minus the hooks' default exclusions). With the defaults alone
# one global magnitude threshold also spans the pyramid and the head, whose
# Xavier/Kaiming-initialised weights are ~3x larger than the ViT blocks'
# (trunc-normal 0.02): at 90 % every ViT block is then pruned to > 99 % and
# the backbone no longer sees the image (measured on the toy model, see
# configs/art/_base_/finetune_mask2former_vit_toy-ytvis21_hard.py).
_base_ = '../mask2former_vit-s_ytvis21.py'

custom_hooks = _base_.custom_hooks + [
    dict(
        type='ARTHook',
        target_sparsity=0.9,
        regularizer='hypersparse',
        prune_only=['^backbone\\.blocks\\.'],
        by_epoch=False,
        warmup=2000,
        interval=250,
        lambda_init=1e-5,
        eta=1.2,
        criterion='loss',
        clip_regularizer=False,
        eval_batches=50,
        min_finetune=3000)
]
