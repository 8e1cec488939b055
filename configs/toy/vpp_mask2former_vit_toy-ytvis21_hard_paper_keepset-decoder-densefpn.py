# The hard toy with the keep-set pixel decoder whose deformable encoder
# follows VPP's keep set while the stride-4 FPN output conv stays dense
# (``update_mask_features=False``): every position of the mask features is
# computed, so objects outside the keep set still get mask features.
_base_ = './vpp_mask2former_vit_toy-ytvis21_hard_paper_keepset-decoder.py'

model = dict(
    track_head=dict(pixel_decoder=dict(update_mask_features=False)))
