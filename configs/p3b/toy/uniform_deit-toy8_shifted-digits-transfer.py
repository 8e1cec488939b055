# Baseline: the same gates, Taylor ranking and schedule as P3B, every block
# keeps the same ratio (no block benefit, no probes).
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
        block_budget='uniform')
]
