# Dense baseline: Mask2Former (video) with a plain ViT-S/16 + simple feature
# pyramid on YouTube-VIS 2021. Inherits mmdet's R50 recipe and swaps only the
# backbone, the head's input channels, the backbone optimizer keys and the
# evaluator (local AP on a held-out split; server zip with format_only=True).
#
# Weights: the backbone starts from a DeiT-S ImageNet checkpoint, e.g.
#   https://dl.fbaipublicfiles.com/deit/deit_small_patch16_224-cd65a155.pth
# saved as checkpoints/deit_small_patch16_224-cd65a155.pth (timm and
# mmpretrain key names both load; the position embedding is interpolated).
# The head starts from scratch (the COCO Mask2Former checkpoint of the base
# config is R50-specific, so its init_cfg is dropped).
_base_ = 'mmdet::mask2former_vis/mask2former_r50_8xb2-8e_youtubevis2021.py'

custom_imports = dict(imports=['mmsparse'], allow_failed_imports=False)

pretrained = 'checkpoints/deit_small_patch16_224-cd65a155.pth'
model = dict(
    backbone=dict(
        _delete_=True,
        type='ViTPyramid',
        arch='small',
        img_size=224,
        patch_size=16,
        drop_path_rate=0.1,
        # No 256-channel projection in the pyramid: the head's pixel decoder
        # projects every level itself (1x1 conv + GN), so ViTDet's 1x1 + 3x3
        # projections (13 GFLOPs/frame at 368x640, a third of the backbone)
        # would be done twice. out_channels=256 restores them (then
        # track_head.in_channels=[256] * 4).
        out_channels=None,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    # pyramid levels (strides 4/8/16/32): C/4, C/2, C, C of ViT-S (C = 384)
    track_head=dict(in_channels=[96, 192, 384, 384]),
    init_cfg=None)

# ViT: no weight decay on norms, position embedding and class token.
backbone_no_decay = dict(lr_mult=0.1, decay_mult=0.0)
embed_multi = dict(lr_mult=1.0, decay_mult=0.0)
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={
            'backbone': dict(lr_mult=0.1, decay_mult=1.0),
            'backbone.pos_embed': backbone_no_decay,
            'backbone.cls_token': backbone_no_decay,
            'query_embed': embed_multi,
            'query_feat': embed_multi,
            'level_embed': embed_multi,
        },
        norm_decay_mult=0.0))

# mmdet's recipe (8000 iterations, decay at 5500) with the milestone as a
# fraction of the run: `--cfg-options train_cfg.max_iters=N` moves it to
# round(0.6875 * N). `end` is left out so that the runner sets it to max_iters.
param_scheduler = dict(
    _delete_=True,
    type='RelativeMultiStepLR',
    by_epoch=False,
    milestone_fractions=[0.6875],
    gamma=0.1)

# Local evaluation on a held-out part of train (ground truth kept by
# tools/dataset_converters/youtubevis2cocovid.py --heldout-ratio 0.1).
# For the official valid set use ann_file youtube_vis_2021_valid.json,
# data_prefix valid/JPEGImages and format_only=True (server zip).
val_dataloader = dict(
    dataset=dict(
        type='CheckedYouTubeVISDataset',
        ann_file='annotations/youtube_vis_2021_heldout.json',
        data_prefix=dict(img_path='train/JPEGImages')))
test_dataloader = val_dataloader
train_dataloader = dict(
    dataset=dict(
        type='CheckedYouTubeVISDataset',
        ann_file='annotations/youtube_vis_2021_train_sub.json'))
val_evaluator = dict(
    _delete_=True,
    type='YouTubeVISAPMetric',
    metric='youtube_vis_ap',
    outfile_prefix='./youtube_vis_results',
    format_only=False)
test_evaluator = val_evaluator
# PNGs of predicted masks over the frames of a few test videos
# (<work_dir>/vis_predictions/test/<video>.png).
# NumClassesCheckHook warns when track_head.num_classes differs from the number
# of classes in the dataset's metainfo (e.g. a class subset).
custom_hooks = [
    dict(type='VISPredictionDrawHook', num_videos=4),
    dict(type='NumClassesCheckHook')
]
env_cfg = dict(dist_cfg=dict(backend='nccl'))
