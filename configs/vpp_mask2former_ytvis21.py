# VPP (Video Patch Pruning, Glandorf et al., https://arxiv.org/abs/2604.00827)
# on the dense ViT-S Mask2Former of configs/mask2former_vit-s_ytvis21.py.
#
# The delta to the dense config: the backbone is wrapped in VPPBackbone (block
# 0 dense, patches of every frame after the first reduced to 40 % at block 1,
# selected from the previous frame's deep features) and the model type is
# VPPMask2FormerVideo, which adds the selector loss `loss_vpp_select` and ties
# the clip length to the head. As in the paper, training uses 3-frame clips of
# nearby frames (frame 0 dense gives the prior of frame 1, frame 1 of frame 2)
# and fine-tunes the dense model (pass its checkpoint as load_from; dense
# `backbone.*` keys map to `backbone.backbone.*`). The paper's 4-stage ViT-S
# schedule (PKR 0.54):
#   --cfg-options model.backbone.prune_layer="[1,3,6,9]" \
#                 model.backbone.keep_ratio="[0.7,0.56,0.448,0.358]"
# See projects/vpp/README.md.
_base_ = './mask2former_vit-s_ytvis21.py'

num_frames = 3
model = dict(
    type='VPPMask2FormerVideo',
    backbone=dict(
        _delete_=True,
        type='VPPBackbone',
        backbone=_base_.model.backbone,
        keep_ratio=0.4,
        prune_layer=1,
        selector='temporal'),
    track_head=dict(num_frames=num_frames))

train_pipeline = _base_.train_pipeline
train_pipeline[0] = dict(
    type='UniformRefFrameSample',
    num_ref_imgs=num_frames - 1,
    frame_range=2,
    filter_key_img=True)
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# the selectors are new: full learning rate (the ViT keeps lr_mult 0.1)
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={'backbone.pruner': dict(lr_mult=1.0, decay_mult=1.0)}))

custom_hooks = _base_.custom_hooks + [
    dict(type='VPPVisualizationHook', num_videos=4)
]
