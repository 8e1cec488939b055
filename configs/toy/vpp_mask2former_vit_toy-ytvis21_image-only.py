# Baseline: image-only selection at the same early block and keep ratio (the
# same selector head on the frame's own block-1 tokens, no temporal prior).
_base_ = './vpp_mask2former_vit_toy-ytvis21.py'

model = dict(backbone=dict(selector='image'))
