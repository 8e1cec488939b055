# Baseline: uniform keep ratio per block and structured magnitude ranking
# (weight norms of each gate element); same gates and schedule as P3B.
_base_ = ['./p3b_deit-toy8_shifted-digits-transfer.py']

custom_hooks = [
    dict(
        type='P3BHook',
        keep_ratio=0.5,
        prune_start=10,
        prune_sparse=25,
        prune_finalize=50,
        by_epoch=True,
        update_interval=68,
        width_multiple=1,
        block_budget='uniform',
        element_score='magnitude')
]
