# ART + HyperSparse, the reference schedule (HyperSparse code defaults):
# 60 dense warm-up epochs, ART with λ0 = 5e-6 and η = 1.05 per epoch until the
# sliding window (3 epochs) of the magnitude-pruned training accuracy beats
# the dense training accuracy, then exactly 160 fine-tune epochs under the
# fixed mask (lr restarted at 0.1, x0.1 after 80 and 120). max_epochs only
# bounds the open-ended ART phase (here at most 180 ART epochs). The window
# rule is the reference code's (a window mean must beat the stored best
# model's own score); the CPU reproduction ran with 'best_mean', see
# projects/hypersparse/README.md.
# Other sparsities: --cfg-options custom_hooks.0.target_sparsity=0.98
_base_ = './resnet32-w2_cifar100.py'

param_scheduler = None  # the hook sets the fine-tune lr
train_cfg = dict(max_epochs=400)
custom_hooks = [
    dict(
        type='ARTHook',
        target_sparsity=0.9,
        regularizer='hypersparse',
        lambda_init=5e-6,
        eta=1.05,
        warmup=60,
        min_finetune=160,
        max_finetune=160,
        finetune_lr_milestones=[80, 120],
        window_rule='best_middle')
]
# the run ends max_finetune epochs after the (unknown) switch: save every
# epoch so that the last one is kept and any point can be resumed
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=3))
