"""mmsparse.utils.vpp_toy_plan / vpp_toy_report: --cfg-options routed into
the VPP-wrapped ViT and checked, the model shape, the report tables and
plot (small configs built in code, fake groups)."""
from mmengine.config import Config

from mmsparse.utils import vpp_toy_plan as plan
from mmsparse.utils import vpp_toy_report as report

ARCH = dict(num_layers=6, embed_dims=192)
DECODER = dict(pixel_decoder=dict(encoder=dict(num_layers=2)))
DENSE = Config(dict(model=dict(backbone=dict(type='ViTPyramid', arch=ARCH),
                               track_head=DECODER)))
VPP = Config(dict(model=dict(
    backbone=dict(type='VPPBackbone', prune_layer=[1, 2, 3, 4],
                  backbone=dict(type='ViTPyramid', arch=ARCH)), track_head=DECODER)))
CONFIGS = {'dense.py': DENSE, 'vpp.py': VPP}


def test_backbone_keys_address_the_vit():
    assert not plan.wraps_vit(DENSE) and plan.wraps_vit(VPP)
    key = 'model.backbone.arch.num_layers'
    assert plan.move_key(DENSE, key) == key
    assert plan.move_key(VPP, key) == 'model.backbone.backbone.arch.num_layers'
    assert plan.move_key(VPP, 'model.track_head.x') == 'model.track_head.x'
    assert plan.model_options(VPP, {key: 4, 'model.track_head.pixel_decoder.encoder.num_layers': 1}
                              ) == ['model.backbone.backbone.arch.num_layers=4',
                                    'model.track_head.pixel_decoder.encoder.num_layers=1']
    assert plan.model_options(DENSE, None) == []
    assert plan.prune_layers(VPP) == [1, 2, 3, 4]


def test_model_options_are_checked():
    assert plan.check_model_options(CONFIGS, {'model.backbone.arch.num_layers': 4}) is None
    assert 'set by the script itself' in plan.check_model_options(
        CONFIGS, {'train_cfg.max_iters': 3})
    assert 'must be an int >= 1' in plan.check_model_options(CONFIGS, {plan.ENCODER_LAYERS: 0})
    typo = plan.check_model_options(CONFIGS, {'model.backbone.arch.num_layer': 4})
    assert 'model.backbone.arch.num_layer is not in dense.py' in typo


def test_model_shape_with_options():
    assert plan.model_shape(DENSE, {}) == (6, 192, 2)
    assert plan.model_shape(DENSE, {'model.backbone.arch.num_layers': 4,
                                    plan.ENCODER_LAYERS: 1}) == (4, 192, 1)
    assert DENSE.model.backbone.arch.num_layers == 6  # merged into a copy


def test_schedules_labels_and_toys():
    assert plan.schedule_label('trunc1', 6) == 'ViT cut to its first 1 of 6 blocks'
    assert plan.schedule_label('dense', 6) == 'dense'
    assert plan.schedule_label('paper', 6) == plan.SCHEDULES['paper']['label']
    assert plan.schedule_toy('paper') == 'hard' and plan.schedule_toy('closure_paper') == 'closure'
    assert set(plan.TOYS['closure']['schedules']) <= set(plan.SCHEDULES)


def _interval(diff):
    return dict(diff=diff, low=diff - 0.01, high=diff + 0.01, n=2, method='paired_bootstrap')


GROUPS = [
    dict(schedule='dense', selector='dense', seeds=[0, 1], pkr=1.0, fg_recall=1.0, AP=0.3,
         AP50=0.5, AP75=0.2, fg_recall_per_seed={0: 1.0, 1: 1.0}),
    dict(schedule='paper', selector='temporal', seeds=[0, 1], pkr=0.4, fg_recall=0.6, AP=0.28,
         AP50=0.5, AP75=0.2, fg_recall_per_seed={0: 0.6, 1: 0.7}, diff_boot=_interval(-0.02),
         diff_seeds=dict(_interval(-0.02), method='t'), per_seed={0: _interval(-0.01)}),
    dict(schedule='paper', selector='image', seeds=[0], pkr=0.4, fg_recall=0.5, AP=0.27,
         AP50=0.5, AP75=0.2, fg_recall_per_seed={0: 0.5}, diff_boot=_interval(-0.03),
         diff_seeds=dict(_interval(-0.03), method='t'), per_seed={0: _interval(-0.03)}),
]
META = dict(heldout_videos=200, num_frames=6, vit_depth=6, pretrain_iters=2000,
            finetune_iters=200, n_boot=100, seeds=[0, 1], cfg_options={'a.b': 1})


def test_tables_and_plot(tmp_path):
    contrast = dict(schedule='paper', a='temporal', b='image', seeds=[0],
                    boot=_interval(0.01), seed_interval=dict(_interval(0.01), method='t'))
    text = report.render_tables(GROUPS, [contrast], META)
    assert text.startswith('Hard toy YouTube-VIS (200 held-out videos x 6 frames')
    assert 'model options (--cfg-options, every row): `a.b=1`' in text
    assert '| paper (0.7/0.56/0.448/0.358 at blocks 1-4) | VPP (temporal prior) | 2 | 0.400 |' \
        in text
    assert '| paper | VPP (temporal prior) - image-only | 1 | +1.0 [+0.0, +2.0] |' in text
    # object pixels kept per seed, and temporal - image-only where both have the seed
    assert '| paper | temporal - image-only | +0.100 |  |' in text
    assert report.fg_recall_lines(GROUPS[:1], [0]) == []
    report.plot(GROUPS, str(tmp_path / 'cmp.png'), 6)
    assert (tmp_path / 'cmp.png').stat().st_size > 0
