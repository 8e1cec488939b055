# VPP, ViT-S, one pruning stage: block 0 dense, 40 % of the patches kept from
# block 1 on (Map-SM only, no later selectors): PKR = (1 + 11 * 0.4) / 12 =
# 0.45 per pruned frame. This was the default VPP config before the paper's
# 4-stage schedule (vpp_mask2former_ytvis21.py) became it; same data, recipe
# and loss weighting (with no later stage, the loss is 40 x the Map-SM term).
_base_ = './vpp_mask2former_ytvis21.py'

model = dict(backbone=dict(prune_layer=1, keep_ratio=0.4))
