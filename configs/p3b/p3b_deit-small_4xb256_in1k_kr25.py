# P3B on DeiT-S keeping 25 % of the parameters (the paper's "pr = 75 %").
_base_ = ['./p3b_deit-small_4xb256_in1k.py']

custom_hooks = [
    dict(
        type='P3BHook',
        keep_ratio=0.25,
        prune_start=10,
        prune_sparse=25,
        prune_finalize=50,
        by_epoch=True,
        update_interval=417)
]
