# The paper's ViT-S schedule (Map-SM keeping 0.7 at block 1, then staged
# selectors to 0.56 / 0.448 / 0.358 at blocks 3 / 6 / 9 of 12, PKR 0.54) on the
# 6-block toy ViT: the stages move to blocks 1 / 2 / 3 / 4 (the paper's block
# positions halved, keeping one block per stage), which gives a PKR of 0.57 in
# the pruned frames (the dense block 0 weighs 1/6 here, 1/12 in ViT-S).
_base_ = './vpp_mask2former_vit_toy-ytvis21_hard.py'

model = dict(
    backbone=dict(prune_layer=[1, 2, 3, 4], keep_ratio=[0.7, 0.56, 0.448, 0.358]))
