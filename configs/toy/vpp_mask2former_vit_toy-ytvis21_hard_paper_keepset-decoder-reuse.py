# As _hard_paper_keepset-decoder.py, with temporal reuse: positions not
# updated take the previous frame's encoder output, layer by layer.
_base_ = './vpp_mask2former_vit_toy-ytvis21_hard_paper_keepset-decoder.py'

model = dict(track_head=dict(pixel_decoder=dict(carry='previous')))
