# Baseline: structured magnitude ranking (weight norms of each gate element)
# with a uniform keep ratio per block; same gates and schedule as P3B.
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
        block_budget='uniform',
        element_score='magnitude')
]
