# VPP on the hard toy set, single stage: keep 40 % of the patches from block 1
# of 6 (PKR 0.5 in the pruned frames). The image-only and random baselines are
# `model.backbone.selector=image|random`; the paper's multi-stage schedule is
# vpp_mask2former_vit_toy-ytvis21_hard_paper.py.
_base_ = './vpp_mask2former_vit_toy-ytvis21.py'

data_root = 'data/toy_ytvis21_hard/'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
