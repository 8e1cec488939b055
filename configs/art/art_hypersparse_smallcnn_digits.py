# ART + HyperSparse on the digits CNN (one delta to the dense base: the hook).
# Equal budget to the baselines: 60 epochs = 10 warm-up + ART (stops by the
# sliding-window criterion, at the latest when 20 epochs are left) +
# fine-tuning under the fixed mask. The hook restarts the lr at the switch
# and decays it x0.1 after 10 and 15 fine-tune epochs, so the base's
# param_scheduler is removed. λ0 and η are scaled to 23 iterations/epoch
# (the reference's 5e-6 and 1.05 are for ~780 iterations/epoch on CIFAR).
_base_ = './smallcnn_digits.py'

param_scheduler = None
custom_hooks = [
    dict(
        type='ARTHook',
        target_sparsity=0.98,
        regularizer='hypersparse',
        lambda_init=1e-4,
        eta=1.25,
        warmup=10,
        min_finetune=20,
        finetune_lr_milestones=[10, 15])
]
