# Only for benchmark_hook_overhead.py on a CPU: the paper's ResNet-32 with
# doubled widths (1.86M prunable weights, like the CIFAR recipe) on digits
# upsampled to 32x32, batch 8, with ARTHook from the first epoch.
_base_ = '../../../configs/art/art_hypersparse_smallcnn_digits.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='CifarResNet',
        depth=32,
        widths=(32, 64, 128),
        in_channels=1),
    head=dict(in_channels=128))
train_dataloader = dict(
    batch_size=8,
    dataset=dict(
        indices=160,
        pipeline=[
            dict(type='Resize', scale=(32, 32)),
            dict(type='PackInputs')
        ]))
train_cfg = dict(max_epochs=2, val_interval=100)
custom_hooks = [
    dict(
        type='ARTHook',
        target_sparsity=0.98,
        lambda_init=1e-4,
        eta=1.25,
        warmup=0,
        max_art_steps=1,
        plot=False)
]
