# ART with L1 instead of HyperSparse (the paper's ablation); same schedule.
_base_ = './art_hypersparse_smallcnn_digits.py'

custom_hooks = [
    dict(
        type='ARTHook',
        target_sparsity=0.98,
        regularizer='l1',
        lambda_init=1e-4,
        eta=1.25,
        warmup=10,
        min_finetune=20,
        finetune_lr_milestones=[10, 15])
]
