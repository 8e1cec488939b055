# P3B + VPP: the VPP config (configs/vpp_mask2former_ytvis21.py: VPPBackbone
# with the paper's ViT-S schedule, 3-frame clips, selector loss, the paper's
# sparse fine-tuning recipe) with the P3B-slim ViT-S of a P3B export as the
# wrapped backbone. VPPBackbone wraps the slim backbone unchanged (same seams
# as ViTPyramid).
#
# Pipeline (projects/composed/README.md): P3B on classification
# (configs/p3b/p3b_deit-small_4xb256_in1k.py, optionally its finetune.py) ->
# configs/composed/p3b_mask2former_vit-s_ytvis21.py (the slim VIS model) ->
# this config, fine-tuned from it (load_from; its backbone.* keys load into
# backbone.backbone.*). P3BHook cannot run on this model itself (no class
# labels; the backbone is wrapped). Set the export with
#   --cfg-options model.backbone.backbone.export=<p3b work_dir>/p3b
# One stage keeping 0.4 from block 1 instead of the paper's schedule:
#   --cfg-options model.backbone.prune_layer=1 model.backbone.keep_ratio=0.4
_base_ = '../vpp_mask2former_ytvis21.py'

p3b_export = 'work_dirs/p3b_deit-small_4xb256_in1k/p3b'
model = dict(
    backbone=dict(
        backbone=dict(
            _delete_=True,
            type='P3BViTPyramid',
            export=p3b_export,
            img_size=224,
            drop_path_rate=0.1,
            out_channels=None)))
