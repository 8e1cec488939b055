# ART on the composed model with the keep-set pixel decoder: only the pixel
# decoder differs from art-p3b-vpp_mask2former_vit-s_ytvis21.py.
_base_ = './art-p3b-vpp_mask2former_vit-s_ytvis21.py'

model = dict(
    track_head=dict(
        pixel_decoder=dict(
            type='KeepSetPixelDecoder',
            carry='input',
            query_select='keep_set',
            margin=0)))
