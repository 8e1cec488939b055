# VPP, ViT-S, the lower operating point (PKR ~0.4; the paper reports 39.3 %
# for ViT-S, 40.9 % for ViT-Ti).
#
# The schedule the official repository publishes for it, in its ViT-Ti
# "0.4PKR" config (its ViT-S "0.4PKR" config repeats the 0.55PKR schedule):
# Map-SM at block 1 keeping 0.6, image selectors at blocks 3/6/9 keeping
# 0.42 / 0.294 / 0.206 of all patches (each stage 0.7x the previous one):
#   -> PKR = (1 + 2*0.6 + 3*0.42 + 3*0.294 + 3*0.206) / 12 = 0.413 per pruned
#      frame.
# Everything else (3-frame clips in the official order, fine-tuning recipe from
# the dense checkpoint, loss weighting) is the default config's.
_base_ = './vpp_mask2former_ytvis21.py'

model = dict(backbone=dict(keep_ratio=[0.6, 0.42, 0.294, 0.206]))
