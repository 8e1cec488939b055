# P3B on an ImageNet-pretrained DeiT-S adapting to CIFAR-100 at 224 px: the
# run of the official README (4 GPUs x 64 images, gradient accumulation 2,
# 50 epochs, pruning starts at epoch 10, mask update every 100 iterations).
#   bash tools/dist_train.sh configs/p3b/p3b_deit-small_4xb64-accum2_cifar100.py 4
# then fine-tune with <work_dir>/p3b/finetune.py.
_base_ = ['./p3b_deit-small_4xb256_in1k.py']

num_classes = 100
model = dict(head=dict(num_classes=num_classes))
# CIFAR images come as RGB arrays (no file loading, no BGR->RGB flip)
data_preprocessor = dict(num_classes=num_classes, to_rgb=False)
rgb_mean = [123.675, 116.28, 103.53]
rgb_std = [58.395, 57.12, 57.375]
train_pipeline = [
    dict(type='RandomResizedCrop', scale=224, backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2,
         total_level=10, magnitude_level=9, magnitude_std=0.5,
         hparams=dict(pad_val=[round(x) for x in rgb_mean],
                      interpolation='bicubic')),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand',
         min_area_ratio=0.02, max_area_ratio=1 / 3, fill_color=rgb_mean,
         fill_std=rgb_std),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='Resize', scale=224, backend='pillow',
         interpolation='bicubic'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=64,
    dataset=dict(_delete_=True, type='CIFAR100', data_root='data/cifar100',
                 split='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=64,
    dataset=dict(_delete_=True, type='CIFAR100', data_root='data/cifar100',
                 split='test', pipeline=test_pipeline))
test_dataloader = val_dataloader
# 4 x 64 x 2 = 512 images per optimizer step -> lr 5e-4 * 512 / 512
optim_wrapper = dict(optimizer=dict(lr=5e-4), accumulative_counts=2)

# 50000 / 256 = 196 iterations per epoch
custom_hooks = [
    dict(
        type='P3BHook',
        keep_ratio=0.5,
        prune_start=10,
        prune_sparse=25,
        prune_finalize=50,
        by_epoch=True,
        update_interval=100)
]
