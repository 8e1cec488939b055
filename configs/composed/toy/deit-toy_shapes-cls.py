# Stage 1 of the toy composed pipeline (projects/composed/run_toy_pipeline.py):
# the toy VIS ViT (6 blocks, dim 192, 3 heads, patch 16; the backbone of
# configs/toy/mask2former_vit_toy-ytvis21.py) as an mmpretrain classifier on
# 64x64 crops of the toy shapes (circle / square / triangle / background,
# cut from toy videos of another seed than the VIS data). Same pixel
# normalisation and channel order as the VIS model, so the weights transfer.
# Data: projects/composed/toy_shapes_cls.py writes the class folders.
_base_ = ['mmpretrain::_base_/default_runtime.py']

custom_imports = dict(imports=['mmsparse'], allow_failed_imports=False)

num_classes = 4
vit_arch = dict(
    embed_dims=192, num_layers=6, num_heads=3, feedforward_channels=768)
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VisionTransformer',
        arch=vit_arch,
        img_size=64,
        patch_size=16,
        drop_rate=0.0,
        drop_path_rate=0.0),
    neck=None,
    head=dict(
        type='VisionTransformerClsHead',
        num_classes=num_classes,
        in_channels=192,
        loss=dict(type='CrossEntropyLoss')))

data_preprocessor = dict(
    num_classes=num_classes,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)

data_root = 'data/toy_shapes_cls/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs')
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='CustomDataset',
        data_root=data_root,
        data_prefix='train',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=64,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CustomDataset',
        data_root=data_root,
        data_prefix='test',
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=5e-4, weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            '.cls_token': dict(decay_mult=0.0),
            '.pos_embed': dict(decay_mult=0.0)
        }),
    clip_grad=dict(max_norm=1.0))
param_scheduler = []
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=5)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=1))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
