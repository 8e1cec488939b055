# VPP (configs/vpp_mask2former_ytvis21.py, the paper's ViT-S schedule) with a
# pixel decoder that follows VPP's keep set: the 6-layer deformable-attention
# encoder of Mask2Former updates only the queries at the positions of the
# patches the ViT kept after its last pruning stage (carried from the
# stride-16 grid to strides 8 / 16 / 32); values stay dense; a position that
# is not updated carries its encoder input. The stride-4 FPN output conv
# runs at the kept positions too (the decoder's `update_mask_features`,
# True by default; _keepset-decoder-densefpn keeps it dense); the 1x1 mask
# feature projection and the transformer decoder see full maps.
#
# Only the pixel decoder's type and its keep-set options differ from the VPP
# config (same schedule, data, fine-tuning recipe and checkpoint keys: a VPP
# checkpoint loads as it is). In training every query runs and the outputs
# are mixed with the backbone's straight-through gate, so the segmentation
# loss also reaches the selectors; at inference only the kept queries run.
# Variants: _keepset-decoder-reuse (positions not updated take the previous
# frame's encoder output) and _image-decoder (the positions chosen per frame
# by an image score on the encoder input, the Sparse-DETR-style baseline).
# See projects/vpp/README.md, "Whole model".
_base_ = './vpp_mask2former_ytvis21.py'

model = dict(
    track_head=dict(
        pixel_decoder=dict(
            type='KeepSetPixelDecoder',
            carry='input',
            query_select='keep_set',
            margin=0)))
