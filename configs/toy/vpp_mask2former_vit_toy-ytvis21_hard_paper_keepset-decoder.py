# The hard toy with the paper's schedule (vpp_..._hard_paper.py) and the
# keep-set pixel decoder (see configs/vpp_mask2former_ytvis21_keepset-decoder.py):
# the toy's 2-layer encoder updates only the queries at VPP's kept positions.
_base_ = './vpp_mask2former_vit_toy-ytvis21_hard_paper.py'

model = dict(
    track_head=dict(
        pixel_decoder=dict(
            type='KeepSetPixelDecoder',
            carry='input',
            query_select='keep_set',
            margin=0)))
