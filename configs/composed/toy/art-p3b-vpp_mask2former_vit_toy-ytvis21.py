# Toy version of all three: ART + HyperSparse (90 %) on the P3B-slim + VPP toy
# model, with the ART settings of configs/art/art_mask2former_vit_toy-ytvis21.py;
# the patch embedding and VPP's selector heads (backbone.pruner.*) stay dense
# (outside prune_only, and in ARTHook's default exclusions).
# Pruned: the linear weights of the ViT blocks only
# (prune_only=backbone.backbone.blocks, minus the hooks' default exclusions).
# With the defaults alone
# one global magnitude threshold also spans the pyramid and the head, whose
# Xavier/Kaiming-initialised weights are ~3x larger than the ViT blocks'
# (trunc-normal 0.02): at 90 % every ViT block is then pruned to > 99 % and
# the backbone no longer sees the image (measured on the toy model, see
# configs/art/_base_/finetune_mask2former_vit_toy-ytvis21_hard.py).
_base_ = './p3b-vpp_mask2former_vit_toy-ytvis21.py'

custom_hooks = _base_.custom_hooks + [
    dict(
        type='ARTHook',
        target_sparsity=0.9,
        regularizer='hypersparse',
        prune_only=['^backbone\\.backbone\\.blocks\\.'],
        by_epoch=False,
        warmup=100,
        interval=10,
        lambda_init=1e-5,
        eta=1.3,
        criterion='loss',
        eval_batches=4,
        min_finetune=100,
        clip_regularizer=False)
]
