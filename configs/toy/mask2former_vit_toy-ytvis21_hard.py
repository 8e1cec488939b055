# The dense toy ViT Mask2Former (configs/toy/mask2former_vit_toy-ytvis21.py)
# on the hard toy set: `python tools/misc/make_toy_ytvis.py --mode hard --out
# data/toy_ytvis21_hard --convert ...` (see projects/vpp/README.md, "toy
# benchmark"). Unannotated moving look-alikes (ring, cross, hollow triangle)
# wear the colours of the classes they imitate, so only shape (seen over
# several patches, i.e. in deeper blocks) tells an object: the benchmark on
# which early patch selection can cost AP. Model and recipe are the easy toy's.
_base_ = './mask2former_vit_toy-ytvis21.py'

data_root = 'data/toy_ytvis21_hard/'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
