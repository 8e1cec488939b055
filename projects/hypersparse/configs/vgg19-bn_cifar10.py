# Dense VGG-19 with BN on CIFAR-10 (4 max-pools, 2x2 average pooling, one
# linear classifier, as in the HyperSparse code). mmpretrain's VGG: its
# BN convolutions have no bias (the reference keeps one; BN absorbs it).
_base_ = './resnet32-w2_cifar10.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='VGG',
        depth=19,
        norm_cfg=dict(type='BN'),
        num_classes=-1,
        with_last_pool=False),
    head=dict(in_channels=512))
