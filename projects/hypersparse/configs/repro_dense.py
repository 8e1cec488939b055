# Dense reference of the reproduction: from the seed's warm-up checkpoint,
# the fine-tune schedule without pruning (40 epochs, lr 0.1, x0.1 after 20
# and 30).
_base_ = './repro_resnet8_harddigits.py'

load_from = 'work_dirs/hypersparse_repro/warmup_dense_seed0/epoch_15.pth'
train_cfg = dict(max_epochs=40, val_interval=8)
param_scheduler = dict(
    _delete_=True,
    type='MultiStepLR',
    by_epoch=True,
    milestones=[20, 30],
    gamma=0.1)
default_hooks = dict(checkpoint=dict(interval=1000, save_last=False))
