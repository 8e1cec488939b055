# Toy version of all three: ART + HyperSparse (90 %) on the P3B-slim + VPP toy
# model, with the ART settings of configs/art/art_mask2former_vit_toy-ytvis21.py;
# ARTHook's default exclusions keep the patch embedding and VPP's selector
# heads (backbone.pruner.*) dense.
_base_ = './p3b-vpp_mask2former_vit_toy-ytvis21.py'

custom_hooks = _base_.custom_hooks + [
    dict(
        type='ARTHook',
        target_sparsity=0.9,
        regularizer='hypersparse',
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
