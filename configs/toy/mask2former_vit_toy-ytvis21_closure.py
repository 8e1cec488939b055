# The dense toy ViT Mask2Former at the paper's depth on the closure toy set:
# `python tools/misc/make_toy_ytvis.py --mode closure --out
# data/toy_ytvis21_closure --convert ...` (see projects/vpp/README.md, "A toy
# for the temporal claim"). Objects are closed outlines drawn with the same
# stroke and on the same texture as open outlines and scribbles, so a single
# patch tells little about them: only the whole outline, seen over several
# blocks, does. The ViT has the 12 blocks of ViT-S (at the toy width: 12
# blocks x dim 192 x 3 heads is ViT-Ti's shape), so that VPP's selectors sit
# at the paper's blocks 1 / 3 / 6 / 9; head and recipe are the toy's.
_base_ = './mask2former_vit_toy-ytvis21.py'

data_root = 'data/toy_ytvis21_closure/'
model = dict(backbone=dict(arch=dict(num_layers=12)))
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
