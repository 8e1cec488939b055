# Ablation: the same gates, Taylor ranking and schedule as P3B, but every
# block keeps the same ratio (no block benefit, no probes).
_base_ = ['./p3b_deit-toy_digits-transfer.py']

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
        width_multiple=1,
        block_budget='uniform')
]
