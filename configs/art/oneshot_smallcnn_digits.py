# Baseline: 30 dense epochs, one-shot global magnitude pruning, 30 epochs of
# fine-tuning under the fixed mask (lr restarted, x0.1 after 10 and 15).
_base_ = './smallcnn_digits.py'

param_scheduler = None
custom_hooks = [
    dict(
        type='OneShotMagnitudePruningHook',
        target_sparsity=0.98,
        prune_at=30,
        finetune_lr_milestones=[10, 15])
]
