# One-shot global magnitude pruning + fine-tuning in the reproduction: from
# the seed's warm-up checkpoint, 12 more dense epochs (lr 0.1, the ART
# phase's place), prune once, then exactly 40 fine-tune epochs under the
# fixed mask (lr restarted at 0.1, x0.1 after 20 and 30), as ART.
_base_ = './repro_resnet8_harddigits.py'

load_from = 'work_dirs/hypersparse_repro/warmup_dense_seed0/epoch_15.pth'
train_cfg = dict(max_epochs=12 + 40, val_interval=8)
default_hooks = dict(checkpoint=dict(interval=1000, save_last=False))
custom_hooks = [
    dict(
        type='OneShotMagnitudePruningHook',
        target_sparsity=0.98,
        prune_at=12,
        finetune_lr_milestones=[20, 30])
]
