# Toy P3B + VPP: configs/toy/vpp_mask2former_vit_toy-ytvis21.py (VPP keep 0.4
# from block 1) wrapping the P3B-slim toy ViT of a P3B export. The toy
# version of configs/composed/p3b-vpp_mask2former_vit-s_ytvis21.py. Set
# another export with --cfg-options model.backbone.backbone.export=DIR
_base_ = '../../toy/vpp_mask2former_vit_toy-ytvis21.py'

p3b_export = 'work_dirs/composed_toy/p3b_cls/p3b'
model = dict(
    backbone=dict(
        backbone=dict(
            _delete_=True,
            type='P3BViTPyramid',
            export=p3b_export,
            img_size=(192, 320),
            drop_path_rate=0.0,
            out_channels=_base_.feat)))
