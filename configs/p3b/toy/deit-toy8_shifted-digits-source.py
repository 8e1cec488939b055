# Source task of the P3B transfer experiment v2
# (projects/p3b/run_transfer_v2.py): a tiny DeiT (8 layers, 64 dims,
# 2 heads, MLP 256, patch 4 on 16 x 16; 16 attention / MLP sub-blocks)
# trained to convergence on all scikit-learn digits 0-4 ("plain" domain,
# grey, upsampled), 20 % of them held out to check convergence.
_base_ = ['mmpretrain::_base_/default_runtime.py']

custom_imports = dict(imports=['mmsparse'], allow_failed_imports=False)

num_classes = 5
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VisionTransformer',
        arch=dict(
            embed_dims=64,
            num_layers=8,
            num_heads=2,
            feedforward_channels=256),
        img_size=16,
        patch_size=4,
        drop_rate=0.0,
        drop_path_rate=0.0),
    neck=None,
    head=dict(
        type='VisionTransformerClsHead',
        num_classes=num_classes,
        in_channels=64,
        loss=dict(type='CrossEntropyLoss')))

data_preprocessor = dict(
    num_classes=num_classes,
    mean=[127.5, 127.5, 127.5],
    std=[127.5, 127.5, 127.5],
    to_rgb=False)

source = dict(
    type='ShiftedDigitsDataset',
    classes=(0, 1, 2, 3, 4),
    test_ratio=0.2,
    split_seed=0,
    variants=1,
    shift=None)
train_pipeline = [
    dict(type='RandomCrop', crop_size=16, padding=2),
    dict(type='PackInputs')
]
test_pipeline = [dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(**source, split='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=256,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**source, split='test', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            '.cls_token': dict(decay_mult=0.0),
            '.pos_embed': dict(decay_mult=0.0)
        }))
max_epochs = 100
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=3,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=3, end=max_epochs,
         eta_min=1e-5, convert_to_iter_based=True)
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=10)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=max_epochs,
                    max_keep_ckpts=1))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
