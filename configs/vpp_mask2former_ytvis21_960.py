# VPP, ViT-S, the paper's schedule at the official input resolution: frames
# resized to at most 960x960 keeping the aspect ratio (the official
# youtube_vis_2021_vpp dataset config), i.e. 540x960 for YouTube-VIS's
# 720x1280 videos, padded to 544x960 = 34 x 60 = 2,040 patches of 16 px,
# instead of mmdet's 640x360 (368x640, 920 patches). Same schedule, recipe and
# frame order as vpp_mask2former_ytvis21.py; the ViT's position embedding is
# interpolated to the larger grid at run time. The dense model it fine-tunes
# should be trained at the same resolution (the same two pipeline edits on
# configs/mask2former_vit-s_ytvis21.py).
_base_ = './vpp_mask2former_ytvis21.py'

img_scale = (960, 960)
train_pipeline = _base_.train_pipeline
train_pipeline[1]['transforms'][2] = dict(
    type='Resize', scale=img_scale, keep_ratio=True)
test_pipeline = _base_.test_pipeline
test_pipeline[0]['transforms'][1] = dict(
    type='Resize', scale=img_scale, keep_ratio=True)
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
