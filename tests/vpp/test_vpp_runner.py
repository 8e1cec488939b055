"""Real runs of the toy VPP config: Runner.train + Runner.test in process
(selection loss and keep ratios in the log, local AP, per-frame keep ratios,
kept-patch PNGs) and tools/dist_train.sh with 2 CPU processes."""
import glob
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from vis_helpers import ROOT, toy_data_options

PY = sys.executable
VPP_TOY = osp.join(ROOT, 'configs', 'toy', 'vpp_mask2former_vit_toy-ytvis21.py')


def run_tool(args, timeout=600, env=None):
    proc = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout,
        env=dict(os.environ, **(env or {})))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    return out


def latest(pattern):
    files = sorted(glob.glob(pattern), key=osp.getmtime)
    assert files, f'nothing matches {pattern}'
    return files[-1]


def test_configs_only_wrap_the_backbone():
    for path, base in [
        (VPP_TOY, 'configs/toy/mask2former_vit_toy-ytvis21.py'),
        ('configs/vpp_mask2former_ytvis21.py',
         'configs/mask2former_vit-s_ytvis21.py'),
    ]:
        cfg, dense = Config.fromfile(path), Config.fromfile(base)
        assert cfg.model.type == 'VPPMask2FormerVideo'
        assert cfg.model.backbone.type == 'VPPBackbone'
        assert cfg.model.backbone.backbone == dense.model.backbone
        assert cfg.model.data_preprocessor == dense.model.data_preprocessor
        assert any(h.type == 'VPPVisualizationHook' for h in cfg.custom_hooks)
        # the clip the sampler gives is the clip the head (and VPP) expects
        sampler = cfg.train_dataloader.dataset.pipeline[0]
        assert sampler.num_ref_imgs + 1 == cfg.model.track_head.num_frames
    for sel in ('image-only', 'random'):
        cfg = Config.fromfile(VPP_TOY.replace('.py', f'_{sel}.py'))
        assert cfg.model.backbone.selector == sel.split('-')[0]


@pytest.fixture(scope='module')
def vpp_run(toy_ytvis_root, tmp_path_factory):
    """Runner.train (2 iterations) then Runner.test of the toy VPP config,
    keep ratio 0.5, in this process."""
    from mmengine.runner import Runner
    work = str(tmp_path_factory.mktemp('vpp_run'))
    cfg = Config.fromfile(VPP_TOY)
    for dl in ('train_dataloader', 'test_dataloader'):
        cfg[dl].dataset.data_root = toy_ytvis_root
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.train_dataloader.batch_size = 1
    cfg.train_cfg.max_iters = 2
    cfg.train_cfg.val_interval = 100
    cfg.default_hooks.checkpoint.interval = 2
    cfg.default_hooks.logger.interval = 1
    cfg.model.backbone.keep_ratio = 0.5
    cfg.work_dir = work
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    with open(latest(osp.join(work, '*', '*.log'))) as f:
        log = f.read()
    return runner, metrics, log


def test_train_logs_selection_loss_and_keep_ratio(vpp_run):
    runner, _, log = vpp_run
    line = [ln for ln in log.splitlines() if 'Iter(train) [2/2]' in ln][0]
    assert 'loss_vpp_select' in line
    # 240 patches, 120 kept from block 1 of 6 in frame 1; frame 0 dense
    keep = float(re.search(r'vpp_keep: ([\d.]+)', line).group(1))
    pkr = float(re.search(r'vpp_pkr: ([\d.]+)', line).group(1))
    assert keep == pytest.approx(0.5, abs=1e-4)
    assert pkr == pytest.approx((1 + (1 + 5 * 0.5) / 6) / 2, abs=1e-4)
    ckpt = torch.load(osp.join(runner.work_dir, 'iter_2.pth'),
                      map_location='cpu', weights_only=False)
    keys = ckpt['state_dict']
    assert any(k.startswith('backbone.backbone.blocks.5.') for k in keys)
    assert any(k.startswith('backbone.pruner.scorers.0.') for k in keys)
    assert runner.model.backbone.num_frames == 2  # from the head


def test_test_prunes_frames_in_order_and_draws(vpp_run):
    runner, metrics, log = vpp_run
    assert 0.0 <= metrics['youtube_vis/segm_mAP'] <= 1.0
    hub = runner.message_hub
    assert hub.get_scalar('test/vpp_keep').current() == pytest.approx(0.5)
    assert hub.get_scalar('test/vpp_pkr').current() == pytest.approx(
        (1 + 3 * (1 + 5 * 0.5) / 6) / 4)
    # per block, over all frames (frame 0 of each video dense): their mean
    # is the PKR; the pruned frames' patch counts are in the log
    blocks = [hub.get_scalar(f'test/vpp_keep_block{i}').current()
              for i in range(6)]
    assert blocks == pytest.approx([1.0] + [(1 + 3 * 0.5) / 4] * 5)
    assert sum(blocks) / 6 == pytest.approx(
        hub.get_scalar('test/vpp_pkr').current())
    assert 'patches per block (pruned frames, mean) 240 120 120 120 120 ' \
        '120' in log
    assert 'vpp_keep_block1: 0.6250' in log  # next to the AP
    # the held-out videos have ground truth: share of object pixels kept
    recall = hub.get_scalar('test/vpp_fg_recall').current()
    assert 0.0 <= recall <= 1.0
    assert hub.get_scalar('test/vpp_fg_selectivity').current() == \
        pytest.approx(recall / 0.5)
    assert 'object pixels kept' in log
    lines = re.findall(r'VPP test \S+: keep ratio per frame ([\d. ]+)\|',
                       log)
    assert len(lines) == 3  # the 3 held-out videos
    assert len(re.findall(r'\| patches per block \(frame 1\) 240 120 120 '
                          r'120 120 120', log)) == 3
    assert all(ln.split() == ['1.00', '0.50', '0.50', '0.50']
               for ln in lines)
    # the last video: frame 0 dense, then exactly 120 of 240 patches
    stats = runner.model.backbone.last_stats
    assert [s.pruned for s in stats] == [False, True, True, True]
    assert [s.counts[-1] for s in stats] == [240, 120, 120, 120]
    pngs = glob.glob(
        osp.join(runner.work_dir, 'vpp_kept_patches', 'test', '*.png'))
    assert len(pngs) == 3
    from PIL import Image
    assert min(Image.open(pngs[0]).size) > 100


def dist_train_two_processes(config, work, toy_ytvis_root, port,
                             options=()):
    """2 iterations of ``config`` with tools/dist_train.sh and 2 gloo
    processes; returns the last training log line and the checkpoint."""
    out = run_tool(
        ['bash', 'tools/dist_train.sh', config, '2', '--work-dir', work,
         '--cfg-options', 'train_cfg.max_iters=2', 'val_cfg=None',
         'val_dataloader=None', 'val_evaluator=None',
         'default_hooks.logger.interval=1',
         'train_dataloader.batch_size=1', *options] + [
             o for o in toy_data_options(toy_ytvis_root)
             if not o.startswith('val_')],
        env=dict(PYTHON=PY, PORT=str(port), OMP_NUM_THREADS='1'))
    assert 'Distributed training: True' in out
    line = [ln for ln in out.splitlines() if 'Iter(train) [2/2]' in ln][0]
    ckpt = torch.load(osp.join(work, 'iter_2.pth'), map_location='cpu',
                      weights_only=False)
    assert ckpt['meta']['iter'] == 2
    return line, ckpt


def test_dist_train_two_cpu_processes(toy_ytvis_root, tmp_path):
    line, _ = dist_train_two_processes(VPP_TOY, str(tmp_path / 'dist'),
                                       toy_ytvis_root, 29531)
    assert 'loss_vpp_select' in line and 'vpp_keep: 0.4000' in line
