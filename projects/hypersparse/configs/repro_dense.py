# Dense reference of the reproduction: from the seed's warm-up checkpoint,
# the fine-tune schedule without pruning (48 epochs, lr 0.1, x0.1 after 24
# and 36).
_base_ = './repro_resnet8_harddigits.py'

load_from = 'work_dirs/hypersparse_repro/warmup_dense_seed0/epoch_18.pth'
train_cfg = dict(max_epochs=48, val_interval=8)
param_scheduler = dict(
    _delete_=True,
    type='MultiStepLR',
    by_epoch=True,
    milestones=[24, 36],
    gamma=0.1)
default_hooks = dict(checkpoint=dict(interval=1000, save_last=False))
