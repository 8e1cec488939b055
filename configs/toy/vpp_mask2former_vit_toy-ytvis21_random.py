# Baseline: uniformly random patches at the same early block and keep ratio.
_base_ = './vpp_mask2former_vit_toy-ytvis21.py'

model = dict(backbone=dict(selector='random'))
