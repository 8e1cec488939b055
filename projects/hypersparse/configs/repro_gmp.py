# Gradual magnitude pruning (cubic, global threshold) in the reproduction:
# from the seed's warm-up checkpoint, a 12-epoch ramp (a pruning step after
# every epoch, lr 0.1), then exactly 40 epochs under the final mask
# (optimizer state cleared, lr restarted at 0.1, x0.1 after 20 and 30).
_base_ = './repro_resnet8_harddigits.py'

load_from = 'work_dirs/hypersparse_repro/warmup_dense_seed0/epoch_15.pth'
train_cfg = dict(max_epochs=12 + 40, val_interval=8)
default_hooks = dict(checkpoint=dict(interval=1000, save_last=False))
custom_hooks = [
    dict(
        type='GradualMagnitudePruningHook',
        target_sparsity=0.98,
        begin=0,
        end=12,
        interval=1,
        reset_optimizer=True,
        finetune_lr_milestones=[20, 30])
]
