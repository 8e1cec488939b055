# A CPU-sized version of configs/mask2former_vit-s_ytvis21.py for the demo and
# the tests: a 6-block dim-192 ViT from scratch, a shrunk Mask2Former head
# (128 channels, 20 queries, 2 encoder + 3 decoder layers, 2,048 points) and
# the toy YouTube-VIS 2021 set of tools/misc/make_toy_ytvis.py (320x192 frames,
# 3 classes). Everything else is inherited. The recipe (lr, backbone lr_mult
# 1.0, iterations) is tuned to learn in minutes on 2 CPU cores.
_base_ = '../mask2former_vit-s_ytvis21.py'

num_classes = 3
num_frames = 2
feat = 128
data_root = 'data/toy_ytvis21/'
metainfo = dict(classes=('circle', 'square', 'triangle'))

model = dict(
    backbone=dict(
        arch=dict(
            _delete_=True,
            embed_dims=192,
            num_layers=6,
            num_heads=3,
            feedforward_channels=768),
        img_size=(192, 320),
        drop_path_rate=0.0,
        out_channels=feat,
        init_cfg=None),
    track_head=dict(
        in_channels=[feat] * 4,
        feat_channels=feat,
        out_channels=feat,
        num_classes=num_classes,
        num_queries=20,
        num_frames=num_frames,
        pixel_decoder=dict(
            encoder=dict(
                num_layers=2,
                layer_cfg=dict(
                    self_attn_cfg=dict(embed_dims=feat, num_heads=4),
                    ffn_cfg=dict(embed_dims=feat, feedforward_channels=512))),
            positional_encoding=dict(num_feats=feat // 2)),
        positional_encoding=dict(num_feats=feat // 2),
        transformer_decoder=dict(
            num_layers=3,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=feat, num_heads=4),
                cross_attn_cfg=dict(embed_dims=feat, num_heads=4),
                ffn_cfg=dict(embed_dims=feat, feedforward_channels=512))),
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1]),
        train_cfg=dict(num_points=2048)))

train_pipeline = [
    dict(
        type='UniformRefFrameSample',
        num_ref_imgs=num_frames - 1,
        frame_range=2,
        filter_key_img=True),
    dict(
        type='TransformBroadcaster',
        share_random_params=True,
        transforms=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadTrackAnnotations', with_mask=True),
            dict(type='Resize', scale=(320, 192), keep_ratio=True),
            dict(type='RandomFlip', prob=0.5),
        ]),
    dict(type='PackTrackInputs')
]
test_pipeline = [
    dict(
        type='TransformBroadcaster',
        transforms=[
            dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=(320, 192), keep_ratio=True),
            dict(type='LoadTrackAnnotations', with_mask=True),
        ]),
    dict(type='PackTrackInputs')
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 300
optim_wrapper = dict(
    optimizer=dict(lr=3e-4),
    paramwise_cfg=dict(
        custom_keys={
            'backbone': dict(lr_mult=1.0, decay_mult=1.0),
            'backbone.pos_embed': dict(lr_mult=1.0, decay_mult=0.0),
            'backbone.cls_token': dict(lr_mult=1.0, decay_mult=0.0),
        }),
    clip_grad=dict(max_norm=1.0, norm_type=2))
# The decay is at 80 % of the run whatever train_cfg.max_iters is (no `end`:
# the runner sets it to max_iters); the warm-up is the first 30 iterations.
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=30),
    dict(
        type='RelativeMultiStepLR',
        by_epoch=False,
        milestone_fractions=[0.8],
        gamma=0.1)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(interval=100, max_keep_ckpts=2))
log_processor = dict(window_size=10)
val_evaluator = dict(outfile_prefix=None)
test_evaluator = val_evaluator
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
