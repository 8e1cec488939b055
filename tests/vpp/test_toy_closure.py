"""The closure toy at the paper's depth: the 12-block configs build and run,
and projects/vpp/run_toy_comparison.py --toy closure plans, checks and
reports its rows (without training)."""
import copy
import json

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from script_loader import load_script
from vis_helpers import empty_heldout_root, synthetic_video_records

from mmsparse.experiment.vis import toy_data
from mmsparse.registry import DATASETS, MODELS
from mmsparse.vpp import check_schedule, schedule_pkr, tokens_per_block

DENSE = 'configs/toy/mask2former_vit_toy-ytvis21_closure.py'
VPP = {
    # config: (prune_layer, keep_ratio, PKR of a pruned frame)
    'configs/toy/vpp_mask2former_vit_toy-ytvis21_closure.py': ([1], [0.4], 0.45),
    'configs/toy/vpp_mask2former_vit_toy-ytvis21_closure_paper.py':
    ([1, 3, 6, 9], [0.7, 0.56, 0.448, 0.358], 0.54),
    'configs/toy/vpp_mask2former_vit_toy-ytvis21_closure_pkr0.4.py':
    ([1, 3, 6, 9], [0.6, 0.42, 0.294, 0.206], 0.413),
}
PAPER = 'configs/toy/vpp_mask2former_vit_toy-ytvis21_closure_paper.py'


@pytest.fixture(scope='module')
def closure_root(tmp_path_factory):
    """4 closure-mode videos of 3 frames (2 held out), CocoVID converted."""
    from mmsparse.datasets.toy_ytvis import make_toy_ytvis
    from mmsparse.datasets.ytvis_convert import convert_youtubevis
    root = str(tmp_path_factory.mktemp('toy_closure'))
    make_toy_ytvis(root, num_videos=4, num_frames=3, seed=0, mode='closure')
    convert_youtubevis(root, version='2021', heldout_ratio=0.5, seed=0, log=None)
    return root + '/'


@pytest.mark.parametrize('path', sorted(VPP))
def test_configs_paper_depth_and_schedules(path):
    dense = Config.fromfile(DENSE)
    assert dense.model.backbone.arch.num_layers == 12
    layers, ratios, pkr = VPP[path]
    cfg = Config.fromfile(path)
    bb = cfg.model.backbone
    # the same ViT as the dense config, wrapped
    assert bb.type == 'VPPBackbone' and bb.backbone == dense.model.backbone
    assert bb.selector == 'temporal' and bb.prior_layer == 5
    assert list(check_schedule(bb.keep_ratio, bb.prune_layer, 12)[1]) == layers
    assert list(check_schedule(bb.keep_ratio, bb.prune_layer, 12)[0]) == ratios
    assert schedule_pkr(ratios, layers, 12) == pytest.approx(pkr, abs=0.005)
    for c in (dense, cfg):
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            assert c[loader].dataset.data_root == 'data/toy_ytvis21_closure/'
    # head and recipe are the toy's
    assert cfg.model.track_head == Config.fromfile(
        'configs/toy/vpp_mask2former_vit_toy-ytvis21.py').model.track_head
    assert cfg.model.track_head == dense.model.track_head


def _build(path, data_root, split):
    cfg = Config.fromfile(path)
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    loader = cfg.train_dataloader if split == 'train' else cfg.test_dataloader
    ds_cfg = copy.deepcopy(loader.dataset)
    ds_cfg.data_root = data_root
    return model, DATASETS.build(ds_cfg)


def test_paper_schedule_prunes_at_blocks_1_3_6_9_of_12(closure_root):
    """One held-out video through the VPP model: frame 0 dense, the others
    with exactly the schedule's patch counts per block; predictions for
    every frame."""
    model, dataset = _build(PAPER, closure_root, 'test')
    vit = model.backbone.backbone
    assert len(vit.blocks) == 12 and vit.embed_dims == 192
    assert model.backbone.pruner.prune_layers == (1, 3, 6, 9)
    model.eval()
    with torch.no_grad():
        results = model.test_step(pseudo_collate([dataset[0]]))
    frames = results[0].video_data_samples
    assert len(frames) == 3
    for f in frames:
        assert f.pred_track_instances.masks.shape[1:] == tuple(f.ori_shape)
    stats = model.backbone.last_stats
    assert [s.pruned for s in stats] == [False, True, True]
    n = stats[0].num_tokens
    assert n == 12 * 20  # 192 x 320 frames, 16 x 16 patches
    assert stats[0].counts == [n] * 12
    expected = tokens_per_block(n, [0.7, 0.56, 0.448, 0.358], [1, 3, 6, 9], 12)
    assert expected == [240, 168, 168, 134, 134, 134, 108, 108, 108, 86, 86, 86]
    for s in stats[1:]:
        assert s.counts == expected


def test_dense_and_single_stage_train_step(closure_root):
    """A training loss on a 2-frame clip: the dense 12-block model, and the
    single-stage VPP model (selector loss, gradients into every block)."""
    for path in (DENSE, 'configs/toy/vpp_mask2former_vit_toy-ytvis21_closure.py'):
        model, dataset = _build(path, closure_root, 'train')
        model.train()
        data = model.data_preprocessor(pseudo_collate([dataset[0]]), training=True)
        losses = model.loss(**data)
        total = sum(v for k, v in losses.items() if 'loss' in k)
        assert torch.isfinite(total)
        total.backward()
        vit = getattr(model.backbone, 'backbone', model.backbone)
        assert len(vit.blocks) == 12
        assert vit.blocks[11].attn.qkv.weight.grad.abs().sum() > 0
        if path != DENSE:
            assert 'loss_vpp_select' in losses
            assert model.backbone.last_stats[1].counts[:2] == [240, 96]


# ------------------------------------------------------------ the driver
@pytest.fixture(scope='module')
def script():
    return load_script('projects/vpp/run_toy_comparison.py')


def test_closure_rows_configs_and_defaults(script):
    _, args = script.parse_args(['--toy', 'closure', '--seeds', '0', '--truncate', '1'])
    assert (args.work_dir, args.results_dir, args.data_root) == (
        'work_dirs/vpp_toy_closure', 'projects/vpp/results/toy_closure',
        'data/toy_ytvis21_closure/')
    assert args.schedules == ['closure_paper', 'closure_pkr0.4']
    error, shape = script.check_args(args)
    assert error is None and shape[0] == 12
    rows = {r['name']: r for r in script.plan_rows(args)}
    assert rows['dense_seed0']['config'] == rows['trunc1_seed0']['config'] == DENSE
    assert 'model.backbone.arch.num_layers=1' in rows['trunc1_seed0']['options']
    assert rows['closure_paper_image_seed0']['config'] == PAPER
    assert len(rows) == 1 + 2 * 3 + 1
    # the hard toy's defaults are unchanged
    _, hard = script.parse_args([])
    assert hard.schedules == ['paper', 'single'] and hard.toy == 'hard'
    assert script.plan_rows(hard)[0]['config'] == script.DENSE
    # schedules of the other toy are refused
    _, args = script.parse_args(['--toy', 'closure', '--schedules', 'single'])
    assert 'not of --toy closure' in script.check_args(args)[0]
    _, args = script.parse_args(['--schedules', 'closure_single'])
    assert 'not of --toy hard' in script.check_args(args)[0]
    _, args = script.parse_args(['--toy', 'closure', '--truncate', '12'])
    assert 'must be in 1..11' in script.check_args(args)[0]


def test_toy_data_is_made_or_checked(tmp_path):
    commands = []
    spec = dict(num_videos=4, num_frames=3, seed=0, heldout_ratio=0.5)
    toy_data(lambda cmd, log: commands.append(cmd), str(tmp_path), 'new', 'closure', spec,
             str(tmp_path / 'log'))
    assert commands[0][commands[0].index('--mode') + 1] == 'closure'
    empty_heldout_root(tmp_path / 'set')
    (tmp_path / 'set' / 'train').mkdir()
    (tmp_path / 'set' / 'train' / 'instances.json').write_text(
        json.dumps(dict(info=dict(mode='hard'))))
    toy_data(lambda *a: pytest.fail('made'), str(tmp_path), 'set', 'hard', spec, 'log')
    with pytest.raises(ValueError, match="holds the 'hard' toy set, the run needs 'closure'"):
        toy_data(lambda *a: pytest.fail('made'), str(tmp_path), 'set', 'closure', spec, 'log')


FG = dict(temporal=0.6, image=0.3, random=0.4)


def test_closure_report_gives_object_pixels_kept_per_seed(script, tmp_path, monkeypatch,
                                                          capsys):
    data = empty_heldout_root(tmp_path / 'data')
    monkeypatch.setattr(script, 'heldout_gt', lambda root: {})
    monkeypatch.setattr(script, 'train', lambda *a, **k: ('pre.pth', 1.))

    def run_row(row, args, data_root, pre_ckpt, gt, work):
        quality = 0.7 if row['selector'] in ('dense', 'truncated') else 0.6
        records = synthetic_video_records(quality, seed=row['seed'])
        fg = FG.get(row['selector'], 1.0) + 0.01 * row['seed']
        return dict(row, finetune_iters=args.finetune_iters, pretrain_iters=args.pretrain_iters,
                    **records.stats(), pkr=0.5, keep=0.4, fg_recall=fg, train_seconds=1.,
                    test_seconds=1., records=records.to_dict())
    monkeypatch.setattr(script, 'run_row', run_row)
    argv = ['--toy', 'closure', '--work-dir', str(tmp_path / 'w'), '--results-dir',
            str(tmp_path / 'res'), '--data-root', str(data), '--seeds', '0', '1',
            '--schedules', 'closure_single', '--selectors', 'temporal', 'image',
            '--n-boot', '20']
    script.main(argv)
    table = (tmp_path / 'res' / 'comparison.md').read_text()
    assert table.startswith('Closure toy YouTube-VIS') and 'ViT 12 blocks' in table
    assert '| closure_single | VPP (temporal prior) | 0.600 | 0.610 |' in table
    assert '| closure_single | image-only | 0.300 | 0.310 |' in table
    assert '| closure_single | temporal - image-only | +0.300 | +0.300 |' in table
    options = json.loads((tmp_path / 'w' / 'run_options.json').read_text())
    assert options['toy'] == 'closure'
    # the work dir belongs to the closure toy
    with pytest.raises(SystemExit):
        script.main(['--work-dir', str(tmp_path / 'w'), '--data-root', str(data), '--seeds',
                     '0', '--schedules'])
    assert '--toy: closure in the work dir, hard now' in capsys.readouterr().err
