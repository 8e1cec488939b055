# The composed model (P3B-slim ViT-S wrapped by VPP) with the keep-set pixel
# decoder of configs/vpp_mask2former_ytvis21_keepset-decoder.py: only the
# pixel decoder differs from p3b-vpp_mask2former_vit-s_ytvis21.py.
_base_ = './p3b-vpp_mask2former_vit-s_ytvis21.py'

model = dict(
    track_head=dict(
        pixel_decoder=dict(
            type='KeepSetPixelDecoder',
            carry='input',
            query_select='keep_set',
            margin=0)))
