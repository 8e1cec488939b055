# Dense transfer of the v2 P3B experiment (projects/p3b/run_transfer_v2.py):
# the source backbone (8 layers, trained on plain digits 0-4) with a new
# head, adapted to digits 5-9 in a strongly shifted domain: rotated by
# 90 +- 10 degrees, scaled 0.8-1.05, shifted, inverted and noised
# (ShiftedDigitsDataset shift='target'). 537 training digits x 4 fixed
# variants = 2,148 images (68 iterations of 32 per epoch); 359 held-out
# digits x 3 variants = 1,077 test images (one image = 0.093 %).
# AdamW 5e-4 without a schedule during the transfer (as the paper's
# pruning run); the run script sets the epochs and the source checkpoint.
_base_ = ['./deit-toy8_shifted-digits-source.py']

source_checkpoint = 'work_dirs/p3b_transfer_v2/source/source.pth'
model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained', checkpoint=source_checkpoint,
            prefix='backbone.')))

target = dict(classes=(5, 6, 7, 8, 9), shift='target', test_ratio=0.4)
train_dataloader = dict(dataset=dict(**target, variants=4))
val_dataloader = dict(dataset=dict(**target, variants=3))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=5e-4))
param_scheduler = []
max_epochs = 50
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=max_epochs,
                    max_keep_ckpts=1))
