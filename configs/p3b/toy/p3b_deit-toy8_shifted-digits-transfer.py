# P3B while adapting the 8-layer source model to the shifted target
# (digits 5-9): keep 50 % of the parameters (the run script also sets
# 0.25). The schedule of the official README run (statistics from epoch
# 10, goal reached at epoch 25, hard masks and slim export at epoch 50);
# 68 iterations per epoch, one budget / mask update per epoch (40).
_base_ = ['./deit-toy8_shifted-digits-transfer_dense.py']

custom_hooks = [
    dict(
        type='P3BHook',
        keep_ratio=0.5,
        prune_start=10,
        prune_sparse=25,
        prune_finalize=50,
        by_epoch=True,
        update_interval=68,
        probe='reference',
        # tiny widths (64 dims, head 32): no rounding of the kept widths
        width_multiple=1)
]
