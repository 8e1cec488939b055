# Baseline: gradual magnitude pruning (cubic schedule, global threshold)
# from epoch 10 to 40, every 2 epochs, then 20 epochs under the final mask
# (lr x0.1 after 10 and 15 of them).
_base_ = './smallcnn_digits.py'

param_scheduler = None
custom_hooks = [
    dict(
        type='GradualMagnitudePruningHook',
        target_sparsity=0.98,
        begin=10,
        end=40,
        interval=2,
        finetune_lr_milestones=[10, 15])
]
