# P3B while adapting the source model to the target task (digits 5-9,
# shifted domain): keep 50 % of the parameters. 20 iterations per epoch:
# statistics from epoch 3, goal reached at epoch 12, hard masks and slim
# export at epoch 30, one mask update per epoch.
_base_ = ['./deit-toy_digits-transfer_dense.py']

custom_hooks = [
    dict(
        type='P3BHook',
        keep_ratio=0.5,
        prune_start=3,
        prune_sparse=12,
        prune_finalize=30,
        by_epoch=True,
        update_interval=20,
        # tiny widths (64 dims, head 32): no rounding of the kept widths
        width_multiple=1)
]
