# The lower operating point on the 12-block closure toy (as
# configs/vpp_mask2former_ytvis21_pkr0.4.py): Map-SM keeping 0.6 at block 1,
# then 0.42 / 0.294 / 0.206 at blocks 3 / 6 / 9 of 12 (PKR 0.41 in the pruned
# frames), prior from block 5.
_base_ = './vpp_mask2former_vit_toy-ytvis21_closure.py'

model = dict(
    backbone=dict(prune_layer=[1, 3, 6, 9], keep_ratio=[0.6, 0.42, 0.294, 0.206]))
