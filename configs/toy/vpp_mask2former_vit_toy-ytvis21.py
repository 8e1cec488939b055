# VPP on the toy ViT Mask2Former (configs/toy/mask2former_vit_toy-ytvis21.py):
# the backbone is wrapped (block 0 dense, 40 % of the patches kept from block
# 1 on in every frame after the first, selected from the previous frame's
# deep features of block 2) and the model type adds the selector loss. Clip
# length, data and schedule are the dense toy's, so runs compare at equal
# iterations (projects/vpp/run_toy_comparison.py).
_base_ = './mask2former_vit_toy-ytvis21.py'

model = dict(
    type='VPPMask2FormerVideo',
    # time order: every committed toy table (VPP, ART and composed) was
    # measured with it; the ViT-S configs run the official order
    train_frame_order='forward',
    backbone=dict(
        _delete_=True,
        type='VPPBackbone',
        backbone=_base_.model.backbone,
        keep_ratio=0.4,
        prune_layer=1,
        selector='temporal',
        smooth_kernel=5))  # 12x20 grid: 9x9 of the paper's 23x40, scaled

optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={'backbone.pruner': dict(lr_mult=1.0, decay_mult=1.0)}))

custom_hooks = _base_.custom_hooks + [
    dict(type='VPPVisualizationHook', num_videos=4)
]
