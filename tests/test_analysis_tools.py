"""The tools OpenMMLab users reach for: print_config, browse_dataset,
analyze_logs and get_flops (run in-process on the toy configs)."""
import json

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image
from script_loader import load_script
from vis_helpers import TOY_CONFIG, toy_data_options

from mmsparse.utils.composed_benchmark import make_slim_export

TOY_VPP = 'configs/toy/vpp_mask2former_vit_toy-ytvis21.py'


def test_print_config_resolves_and_saves(tmp_path, capsys):
    tool = load_script('tools/misc/print_config.py')
    saved = tmp_path / 'resolved.py'
    cfg = tool.main([TOY_VPP, '--cfg-options', 'train_cfg.max_iters=7',
                     '--save-path', str(saved)])
    out = capsys.readouterr().out
    assert out.startswith('Config:\n') and "type='VPPBackbone'" in out
    # inherited from mmdet's recipe through two mmsparse configs
    assert "type='Mask2FormerTrackHead'" in out
    again = Config.fromfile(str(saved))
    assert again.train_cfg.max_iters == 7 == cfg.train_cfg.max_iters
    assert again.model.backbone.keep_ratio == 0.4
    with pytest.raises(SystemExit):
        tool.main([TOY_VPP, '--save-path', str(tmp_path / 'resolved.txt')])


def test_browse_dataset_draws_tracks_and_classes(toy_ytvis_root, tmp_path):
    tool = load_script('tools/analysis_tools/browse_dataset.py')
    files = tool.main([TOY_CONFIG, '--output-dir', str(tmp_path), '--num-videos', '2',
                       '--cfg-options'] + toy_data_options(toy_ytvis_root))
    assert len(files) == 2
    for f in files:
        assert f.endswith('.png')
        with Image.open(f) as im:
            assert min(im.size) > 150
    # the held-out split (test mode) too
    held = tool.main([TOY_CONFIG, '--split', 'test', '--output-dir', str(tmp_path / 'test'),
                      '--num-videos', '1', '--cfg-options'] + toy_data_options(toy_ytvis_root))
    assert len(held) == 1


def test_draw_frame_colours_masks_and_names_tracks():
    tool = load_script('tools/analysis_tools/browse_dataset.py')
    from mmsparse.utils.drawing import instance_color
    image = np.full((40, 60, 3), 128, np.uint8)
    mask = np.zeros((40, 60), np.uint8)
    mask[5:35, 5:55] = 1
    import pycocotools.mask as mask_util
    rle = mask_util.encode(np.asfortranarray(mask))
    rle['counts'] = rle['counts'].decode()
    drawn, names = tool.draw_frame(image, [dict(instance_id=7, bbox_label=1, mask=rle)],
                                   ('cat', 'dog'))
    assert names == ['#7 dog']
    expected = (0.5 * 128 + 0.5 * instance_color(7)).astype(np.uint8)
    assert np.abs(drawn[6, 6].astype(int) - expected.astype(int)).max() <= 1  # mask colour
    assert (drawn[0, 0] == 128).all()  # outside the mask untouched
    # the label is written inside the mask: (anti-aliased) white text pixels there
    assert (drawn[5:35, 5:55] > 200).all(-1).sum() > 20


def _write_scalars(path):
    rows = []
    for it in range(10, 101, 10):
        rows.append({'lr': 1e-4, 'loss': 5.0 / it ** 0.5, 'loss_cls': 1.0 / it ** 0.5,
                     'd0.loss_cls': 2.0, 'time': 0.5, 'data_time': 0.01, 'iter': it,
                     'sparsity': min(0.9, it / 100), 'art_lambda': 1e-5 * 1.2 ** (it / 10),
                     'step': it})
    rows.append({'youtube_vis/segm_mAP': 0.25, 'vpp_pkr': 0.55, 'step': 100})
    path.parent.mkdir(parents=True)
    path.write_text('\n'.join(json.dumps(r) for r in rows) + '\n')
    return path


def test_analyze_logs_panels_and_summary(tmp_path, capsys):
    tool = load_script('tools/analysis_tools/analyze_logs.py')
    work = tmp_path / 'run_a'
    _write_scalars(work / '20260101_000000' / 'vis_data' / 'scalars.json')
    out_png = tmp_path / 'curves.png'
    tool.main([str(work), '--out', str(out_png)])
    printed = capsys.readouterr().out
    assert 'run_a: 100 iterations logged, median 0.500 s/iteration' in printed
    assert '  youtube_vis/segm_mAP: 0.25 (at 100)' in printed
    assert '  sparsity: 0.9 (at 100)' in printed
    assert 'd0.loss_cls' not in printed and 'data_time' not in printed
    with Image.open(out_png) as im:
        assert im.size[1] > 5 * 250  # five panels
    from mmsparse.utils.plots import assign_panels
    panels = assign_panels({'loss', 'loss_cls', 'd0.loss_cls', 'lr', 'sparsity', 'art_lambda',
                            'youtube_vis/segm_mAP', 'vpp_pkr', 'vpp_keep_block3',
                            'p3b_keep_ratio', 'accuracy/top1', 'time'})
    assert panels == {
        'losses': ['loss', 'loss_cls'],
        'evaluation': ['accuracy/top1', 'youtube_vis/segm_mAP'],
        'sparsity and keep ratios': ['p3b_keep_ratio', 'sparsity', 'vpp_keep_block3',
                                     'vpp_pkr'],
        'ART lambda': ['art_lambda'],
        'learning rate': ['lr']}
    with pytest.raises(KeyError, match="none of the keys \\['nothing'\\]"):
        tool.main([str(work), '--keys', 'nothing', '--out', str(out_png)])
    with pytest.raises(FileNotFoundError, match='no scalars.json'):
        tool.main([str(tmp_path / 'nowhere')])


@pytest.fixture(scope='module')
def dense_toy_flops():
    tool = load_script('tools/analysis_tools/get_flops.py')
    return tool.get_flops(TOY_CONFIG, (192, 320), frames=2)


def test_get_flops_dense_vis(dense_toy_flops):
    row = dense_toy_flops
    assert row['kind'] == 'vis' and row['input'] == '192x320'
    assert 0 < row['backbone_GFLOPs_per_frame'] < row['model_GFLOPs_per_frame']
    assert row['patch_keep_ratio'] == 1.0


def test_get_flops_vpp_prunes_the_backbone(dense_toy_flops, capsys):
    tool = load_script('tools/analysis_tools/get_flops.py')
    row = tool.main([TOY_VPP, '--shape', '192', '320'])
    assert row['kind'] == 'vpp'
    # block 0 dense, blocks 1-5 keep 40 % of the 240 patches: (1 + 5 * 0.4) / 6
    assert row['patch_keep_ratio'] == pytest.approx(0.5)
    assert row['patches_per_block'] == [240, 96, 96, 96, 96, 96]
    # the embedding and the pyramid stay dense (measured: 0.76 of the dense backbone)
    assert row['backbone_GFLOPs_per_frame'] < 0.8 * dense_toy_flops['backbone_GFLOPs_per_frame']
    assert row['model_GFLOPs_per_frame'] < dense_toy_flops['model_GFLOPs_per_frame']
    assert '| patch keep ratio |' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        tool.main([TOY_VPP, '--shape', '200', '320'])


def test_get_flops_p3b_slim_backbone(dense_toy_flops, tmp_path):
    cfg = Config.fromfile(TOY_CONFIG)
    export = make_slim_export(cfg.model.backbone.to_dict(), str(tmp_path / 'p3b'),
                              keep=0.5, score='magnitude')
    tool = load_script('tools/analysis_tools/get_flops.py')
    row = tool.get_flops('configs/composed/toy/p3b_mask2former_vit_toy-ytvis21.py', (192, 320),
                         cfg_options={'model.backbone.export': export['out_dir']})
    assert row['kind'] == 'vis'
    assert row['backbone_params_M'] < dense_toy_flops['backbone_params_M']
    assert row['backbone_GFLOPs_per_frame'] < dense_toy_flops['backbone_GFLOPs_per_frame']


def test_get_flops_classifier_against_matmul_count():
    tool = load_script('tools/analysis_tools/get_flops.py')
    row = tool.get_flops('configs/p3b/toy/deit-toy_digits-source.py', (16, 16))
    assert row['kind'] == 'classifier'
    # the toy DeiT: 16 patches of 4x4 + class token, dim 64, 4 layers, MLP 256, 5 classes
    n, d, f = 17, 64, 256
    per_layer = n * d * 3 * d + 2 * n * n * d + n * d * d + 2 * n * d * f
    matmuls = 16 * 48 * d + 4 * per_layer + d * 5
    # the rest (layer norms) adds a few percent
    assert matmuls <= row['model_GFLOPs_per_frame'] * 1e9 <= 1.05 * matmuls
