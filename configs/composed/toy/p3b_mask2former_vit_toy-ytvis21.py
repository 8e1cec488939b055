# Toy P3B-slim VIS model: configs/toy/mask2former_vit_toy-ytvis21.py with the
# backbone built from the P3B export of the toy-shapes classifier
# (p3b_deit-toy_shapes-cls.py writes <work_dir>/p3b). Set another export with
#   --cfg-options model.backbone.export=DIR
_base_ = '../../toy/mask2former_vit_toy-ytvis21.py'

p3b_export = 'work_dirs/composed_toy/p3b_cls/p3b'
model = dict(
    backbone=dict(
        _delete_=True,
        type='P3BViTPyramid',
        export=p3b_export,
        img_size=(192, 320),
        drop_path_rate=0.0,
        out_channels=_base_.feat))
