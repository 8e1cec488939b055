# Stage 2 of the toy composed pipeline: P3B (keep 50 % of the parameters)
# while fine-tuning the dense toy-shapes classifier of stage 1
# (pass it as load_from). Statistics from epoch 1, goal keep ratio at epoch
# 5, hard masks and the slim export (<work_dir>/p3b/slim_model.{pth,py}) at
# epoch 8. Kept widths rounded to multiples of 8 (dims 192, heads of 64).
_base_ = ['./deit-toy_shapes-cls.py']

load_from = 'work_dirs/composed_toy/dense_cls/epoch_10.pth'
train_cfg = dict(max_epochs=8, val_interval=8)
custom_hooks = [
    dict(
        type='P3BHook',
        keep_ratio=0.5,
        prune_start=1,
        prune_sparse=5,
        prune_finalize=8,
        by_epoch=True,
        update_interval=20,
        probe_convs=1,
        width_multiple=8)
]
