# The paper's ViT-S schedule on the 12-block closure toy, at its own block
# positions: Map-SM keeping 0.7 at block 1, then staged selectors to 0.56 /
# 0.448 / 0.358 at blocks 3 / 6 / 9 of 12 (PKR 0.54 in the pruned frames, as
# configs/vpp_mask2former_ytvis21.py), prior from block 5.
_base_ = './vpp_mask2former_vit_toy-ytvis21_closure.py'

model = dict(
    backbone=dict(prune_layer=[1, 3, 6, 9], keep_ratio=[0.7, 0.56, 0.448, 0.358]))
