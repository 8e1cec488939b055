# Dense reference of the toy composed pipeline: the toy ViT Mask2Former
# (configs/toy/mask2former_vit_toy-ytvis21.py) started from the dense
# toy-shapes classifier of stage 1 (mmpretrain key names and the 4x4
# position grid are converted/interpolated on load), as the slim rows start
# from the P3B export of the same classifier.
_base_ = '../../toy/mask2former_vit_toy-ytvis21.py'

dense_classifier = 'work_dirs/composed_toy/dense_cls/epoch_10.pth'
model = dict(
    backbone=dict(
        init_cfg=dict(
            _delete_=True, type='Pretrained', checkpoint=dense_classifier)))
