# P3B on DeiT-S (keep 50 % of the parameters) with the cheap probes: the
# schedule, budgets and all other settings of p3b_deit-small_4xb256_in1k.py;
# only the probes that measure the block benefit differ (one narrow probe
# per position of the residual stream, shared classifiers; see
# mmsparse/p3b/probes.py and the cost table in projects/p3b/README.md).
# probe='reference' brings back the paper's probes.
_base_ = ['./p3b_deit-small_4xb256_in1k.py']

custom_hooks = [
    dict(
        type='P3BHook',
        keep_ratio=0.5,
        prune_start=10,
        prune_sparse=25,
        prune_finalize=50,
        by_epoch=True,
        update_interval=417,
        probe='cheap',
        probe_width=32,
        probe_fraction=1.0,
        probe_window=None)
]
