# P3B (Pruning by Block Benefit, https://arxiv.org/abs/2506.23675) on DeiT-S,
# keeping 50 % of the parameters (the paper's "pr = 50 %").
#
# The paper's recipe (official code, README run): start from a pretrained
# DeiT-S, prune for 50 epochs on the target data with the DeiT augmentations
# (RandAugment, mixup 0.8, cutmix 1.0, label smoothing 0.1, random erasing
# 0.25), AdamW lr 5e-4 x batch / 512, weight decay 0.05, *no* LR schedule
# during the pruning run; pruning starts at epoch 10 (spec default 5), the
# goal keep ratio is reached at epoch 25, masks are hard and the model is
# sliced at epoch 50; ~3 mask updates per epoch. Then fine-tune the slim
# model with `<work_dir>/p3b/finetune.py` (written by the hook).
#
# This file keeps mmpretrain's ImageNet-1k data settings so that it runs as
# is; for the transfer setting of the paper (iFood / iNat19 / CIFAR-100)
# replace the dataloaders and `model.head.num_classes`.
_base_ = ['mmpretrain::deit/deit-small_4xb256_in1k.py']

custom_imports = dict(imports=['mmsparse'], allow_failed_imports=False)

# ImageNet-1k pretrained DeiT-S (mmpretrain release)
load_from = 'https://download.openmmlab.com/mmclassification/v0/deit/deit-small_pt-4xb256_in1k_20220218-9425b9bb.pth'  # noqa

max_epochs = 50
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
# constant learning rate while pruning (as the reference); 4 x 256 images
# per step -> lr = 5e-4 * 1024 / 512
optim_wrapper = dict(optimizer=dict(lr=5e-4 * 1024 / 512))
param_scheduler = [
    dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0,
         end=max_epochs)
]
default_hooks = dict(checkpoint=dict(interval=5, max_keep_ckpts=2))

# 1281167 / 1024 = 1251 iterations per epoch -> 3 updates per epoch
custom_hooks = [
    dict(
        type='P3BHook',
        keep_ratio=0.5,
        prune_start=10,
        prune_sparse=25,
        prune_finalize=max_epochs,
        by_epoch=True,
        update_interval=417,
        # reference hyper-parameters (the hook's defaults), written out
        gate_scales=dict(attn_out=1.5, mlp_hidden=0.75, mlp_out=1.5),
        ema_momentum=0.2,
        tau_max=0.1,
        tau_min=0.0,
        alpha=0.5,
        benefit_scale=10.0,
        probe_lr=5e-4,
        probe_weight_decay=0.05)
]
