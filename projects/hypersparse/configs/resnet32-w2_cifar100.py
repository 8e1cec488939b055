_base_ = './resnet32-w2_cifar10.py'

num_classes = 100
model = dict(
    data_preprocessor=dict(
        num_classes=num_classes,
        mean=[129.304, 124.070, 112.434],
        std=[68.170, 65.392, 70.418]),
    head=dict(num_classes=num_classes))
train_dataloader = dict(
    dataset=dict(type='CIFAR100', data_root='data/cifar100'))
val_dataloader = dict(
    dataset=dict(type='CIFAR100', data_root='data/cifar100'))
test_dataloader = val_dataloader
