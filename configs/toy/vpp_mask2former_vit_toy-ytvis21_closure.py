# VPP on the closure toy set with the 12-block toy ViT
# (configs/toy/mask2former_vit_toy-ytvis21_closure.py), single stage: keep
# 40 % of the patches from block 1 of 12, selected from the previous frame's
# features of block 5 (the paper's prior layer). With one stage the share of
# object pixels kept in the pruned frames is that of the block-1 selection:
# `model.backbone.selector=image` gives the image-only selector on the same
# block-1 features, `random` random patches. The paper's staged schedule is
# vpp_mask2former_vit_toy-ytvis21_closure_paper.py, the lower operating point
# vpp_mask2former_vit_toy-ytvis21_closure_pkr0.4.py.
_base_ = './vpp_mask2former_vit_toy-ytvis21.py'

data_root = 'data/toy_ytvis21_closure/'
model = dict(
    backbone=dict(
        backbone=dict(arch=dict(num_layers=12)),
        prune_layer=1,
        keep_ratio=0.4,
        prior_layer=5))
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
