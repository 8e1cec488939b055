# Dense ViT-B/16 variant of configs/mask2former_vit-s_ytvis21.py.
# Backbone weights: DeiT-B, e.g. deit_base_patch16_224-b5f2ef4d.pth.
_base_ = './mask2former_vit-s_ytvis21.py'

pretrained = 'checkpoints/deit_base_patch16_224-b5f2ef4d.pth'
model = dict(
    backbone=dict(
        arch='base',
        drop_path_rate=0.2,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    track_head=dict(in_channels=[192, 384, 768, 768]))  # C/4, C/2, C, C
