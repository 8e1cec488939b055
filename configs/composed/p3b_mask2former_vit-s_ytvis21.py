# P3B-slim ViT-S as the backbone of the dense Mask2Former-VIS config
# (configs/mask2former_vit-s_ytvis21.py): one delta, the backbone is built
# from a P3B export instead of the dense DeiT-S.
#
# The export is what P3BHook writes under <work_dir>/p3b/ (slim_model.pth +
# slim_model.py), e.g. after
#   python tools/train.py configs/p3b/p3b_deit-small_4xb256_in1k.py
# it is work_dirs/p3b_deit-small_4xb256_in1k/p3b. P3BViTPyramid reads the
# kept widths per block from slim_model.py and loads slim_model.pth like a
# DeiT checkpoint (classifier head dropped, position embedding interpolated).
# To start from the fine-tuned slim classifier (the run of
# <work_dir>/p3b/finetune.py) instead, also set
#   model.backbone.checkpoint=<work_dir>/finetune/epoch_N.pth
# The channels per pyramid level are the dense ones (P3B keeps the residual
# width), so the head is unchanged.
_base_ = '../mask2former_vit-s_ytvis21.py'

p3b_export = 'work_dirs/p3b_deit-small_4xb256_in1k/p3b'
model = dict(
    backbone=dict(
        _delete_=True,
        type='P3BViTPyramid',
        export=p3b_export,
        img_size=224,
        drop_path_rate=0.1,
        out_channels=None))
