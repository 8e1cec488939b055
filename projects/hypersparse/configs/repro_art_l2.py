# ART + L2 (the paper's ablation) in the reproduction; the same schedule as
# repro_art_hypersparse.py, λ0 tuned separately on the validation split.
_base_ = './repro_art_hypersparse.py'

custom_hooks = [
    dict(
        type='ARTHook',
        target_sparsity=0.98,
        regularizer='l2',
        lambda_init=5e-6,
        eta=1.05**(160 / 40),
        warmup=0,
        min_finetune=40,
        max_finetune=40,
        finetune_lr_milestones=[20, 30])
]
