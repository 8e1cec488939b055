# The keep-set pixel decoder (vpp_mask2former_ytvis21_keepset-decoder.py) with
# the stride-4 FPN output conv computed at every position
# (`update_mask_features=False`): only the deformable encoder follows VPP's
# keep set, so objects outside it still get full mask features. On the hard
# toy this variant lost about half as much AP as the one with the sparse FPN
# conv (projects/vpp/README.md, "Whole model").
_base_ = './vpp_mask2former_ytvis21_keepset-decoder.py'

model = dict(
    track_head=dict(pixel_decoder=dict(update_mask_features=False)))
