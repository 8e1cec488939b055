_base_ = './resnet32-w2_cifar100.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='VGG',
        depth=19,
        norm_cfg=dict(type='BN'),
        num_classes=-1,
        with_last_pool=False),
    head=dict(in_channels=512))
