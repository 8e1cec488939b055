# The dense transfer with block-benefit logging (the paper's Fig. 1): a
# P3BHook that keeps every parameter (keep_ratio=1, tau_max=0: all gates
# stay exactly 1, so the model trains as the dense one) measures the
# benefit of all 16 sub-blocks from the first iteration and records it at
# every update (once per epoch, 68 iterations) in p3b/history.json.
_base_ = ['./deit-toy8_shifted-digits-transfer_dense.py']

custom_hooks = [
    dict(
        type='P3BHook',
        keep_ratio=1.0,
        tau_max=0.0,
        prune_start=0,
        prune_sparse=0,
        prune_finalize=50,
        by_epoch=True,
        update_interval=68,
        probe='reference',
        width_multiple=1)
]
