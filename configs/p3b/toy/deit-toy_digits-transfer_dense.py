# Dense transfer baseline: the source model's backbone (new head) fine-tuned
# on digits 5-9 in the "shifted" domain (rotated, inverted, tinted).
_base_ = ['./deit-toy_digits-source.py']

source_checkpoint = 'work_dirs/p3b_digits/source/epoch_30.pth'
model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained', checkpoint=source_checkpoint,
            prefix='backbone.')))

target = dict(classes=(5, 6, 7, 8, 9), domain='shifted')
train_dataloader = dict(dataset=target)
val_dataloader = dict(dataset=target)
test_dataloader = dict(dataset=target)
train_cfg = dict(max_epochs=30, val_interval=10)
