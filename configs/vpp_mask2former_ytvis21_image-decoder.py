# Baseline for the keep-set pixel decoder: the same sparse encoder, with the
# positions it updates chosen per frame from the image alone (a learned score
# on the stride-16 encoder input, straight-through top-k, Sparse-DETR /
# Focus-DETR style), as many as VPP keeps in that frame. The backbone is VPP
# as in vpp_mask2former_ytvis21.py. See
# vpp_mask2former_ytvis21_keepset-decoder.py.
_base_ = './vpp_mask2former_ytvis21_keepset-decoder.py'

model = dict(track_head=dict(pixel_decoder=dict(query_select='image')))
