# VPP + the keep-set pixel decoder with temporal reuse: an encoder position
# that is not updated takes, layer by layer, the output of the same layer for
# the previous frame (the first frame of a video runs dense). See
# vpp_mask2former_ytvis21_keepset-decoder.py.
_base_ = './vpp_mask2former_ytvis21_keepset-decoder.py'

model = dict(track_head=dict(pixel_decoder=dict(carry='previous')))
