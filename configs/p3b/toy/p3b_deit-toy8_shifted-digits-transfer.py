# P3B while adapting the 8-layer source model to the shifted target
# (digits 5-9): keep 50 % of the parameters (the run script also sets
# 0.25). 68 iterations per epoch: statistics from epoch 2, goal reached at
# epoch 15, hard masks and slim export at epoch 40, one budget / mask
# update per epoch (38 updates).
_base_ = ['./deit-toy8_shifted-digits-transfer_dense.py']

custom_hooks = [
    dict(
        type='P3BHook',
        keep_ratio=0.5,
        prune_start=2,
        prune_sparse=15,
        prune_finalize=40,
        by_epoch=True,
        update_interval=68,
        probe='reference',
        # tiny widths (64 dims, head 32): no rounding of the kept widths
        width_multiple=1)
]
