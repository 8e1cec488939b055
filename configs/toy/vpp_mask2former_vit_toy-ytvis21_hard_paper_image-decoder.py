# As _hard_paper_keepset-decoder.py, with the image-score baseline: the
# decoder's positions chosen per frame from the encoder input (smoothing
# window 5 on the toy's 12x20 grid, as the toy's VPP selectors).
_base_ = './vpp_mask2former_vit_toy-ytvis21_hard_paper_keepset-decoder.py'

model = dict(
    track_head=dict(
        pixel_decoder=dict(query_select='image', score_smooth_kernel=5)))
