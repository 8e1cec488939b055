# ART + HyperSparse in the reproduction (see repro_resnet8_harddigits.py for
# the scaled schedule). Starts from the seed's dense warm-up checkpoint; ART
# from the first epoch (λ0, η = 1.05 ** (160 / 40) per epoch: the
# reference's schedule compressed 25x in iterations like every phase), the
# criterion on the full training set
# after every epoch, the switch at the latest after 32 ART epochs
# (min_finetune), then exactly 40 fine-tune epochs (max_finetune; lr
# restarted at 0.1, x0.1 after 20 and 30). λ0 is tuned on the validation
# split by run_reproduction.py (grid 5e-7 .. 5e-5, the paper's range).
_base_ = './repro_resnet8_harddigits.py'

load_from = 'work_dirs/hypersparse_repro/warmup_dense_seed0/epoch_15.pth'
train_cfg = dict(max_epochs=32 + 40, val_interval=8)
default_hooks = dict(checkpoint=dict(interval=1000, save_last=False))
custom_hooks = [
    dict(
        type='ARTHook',
        target_sparsity=0.98,
        regularizer='hypersparse',
        lambda_init=5e-6,
        eta=1.05**(160 / 40),
        warmup=0,
        min_finetune=40,
        max_finetune=40,
        finetune_lr_milestones=[20, 30])
]
