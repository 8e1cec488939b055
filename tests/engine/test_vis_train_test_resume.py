"""Real runs of the toy VIS config through the user-facing tools.

tools/train.py (a few iterations, validation at the end), tools/test.py
(local AP + prediction PNGs), tools/train.py --resume (continues at the saved
iteration from the saved weights), tools/dist_train.sh with 2 CPU processes.
"""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from vis_helpers import TOY_CONFIG, toy_data_options

PY = sys.executable


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


@pytest.fixture(scope='module')
def trained(toy_ytvis_root, tmp_path_factory):
    work = str(tmp_path_factory.mktemp('toy_train'))
    out = run_tool([
        PY, 'tools/train.py', TOY_CONFIG, '--work-dir', work,
        '--cfg-options', 'train_cfg.max_iters=4', 'train_cfg.val_interval=4',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1'
    ] + toy_data_options(toy_ytvis_root))
    return work, out


def test_train_logs_and_checkpoints(trained):
    work, out = trained
    assert osp.exists(osp.join(work, 'iter_2.pth'))
    assert osp.exists(osp.join(work, 'iter_4.pth'))
    assert 'Iter(train) [4/4]' in out
    # validation at the end of training with local AP
    assert 'youtube_vis/segm_mAP' in out
    ckpt = torch.load(osp.join(work, 'iter_4.pth'), map_location='cpu',
                      weights_only=False)
    assert ckpt['meta']['iter'] == 4
    assert any(k.startswith('backbone.blocks.0.') for k in ckpt['state_dict'])


def test_test_tool_reports_ap_and_draws(trained, toy_ytvis_root):
    work, _ = trained
    test_dir = osp.join(work, 'test')
    run_tool([
        PY, 'tools/test.py', TOY_CONFIG, osp.join(work, 'iter_4.pth'),
        '--work-dir', test_dir, '--cfg-options'
    ] + toy_data_options(toy_ytvis_root))
    with open(latest(osp.join(test_dir, '*', '*.json'))) as f:
        metrics = json.load(f)
    for key in ('segm_mAP', 'segm_mAP_50', 'segm_mAP_75'):
        value = metrics[f'youtube_vis/{key}']
        assert 0.0 <= value <= 1.0
    pngs = glob.glob(osp.join(test_dir, 'vis_predictions', 'test', '*.png'))
    assert len(pngs) == 3  # the 3 held-out videos
    from PIL import Image
    assert min(Image.open(pngs[0]).size) > 100


def test_resume_continues_from_saved_iteration(trained, toy_ytvis_root,
                                               tmp_path):
    work, _ = trained
    saved = torch.load(osp.join(work, 'iter_2.pth'), map_location='cpu',
                       weights_only=False)
    resumed = str(tmp_path / 'resumed')
    out = run_tool([
        PY, 'tools/train.py', TOY_CONFIG, '--work-dir', resumed, '--resume',
        osp.join(work, 'iter_2.pth'), '--cfg-options',
        'train_cfg.max_iters=4', 'train_cfg.val_interval=100',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1'
    ] + toy_data_options(toy_ytvis_root))
    assert 'resumed epoch: 0, iter: 2' in out
    assert 'Iter(train) [3/4]' in out and 'Iter(train) [4/4]' in out
    assert 'Iter(train) [1/4]' not in out
    final = torch.load(osp.join(resumed, 'iter_4.pth'), map_location='cpu',
                       weights_only=False)
    assert final['meta']['iter'] == 4
    # the optimizer state came along: AdamW step counts continue from 2
    steps = {int(s['step']) for s in final['optimizer']['state'].values()}
    assert steps == {4}
    assert {int(s['step'])
            for s in saved['optimizer']['state'].values()} == {2}
    # and training moved the weights on from the checkpoint
    key = 'backbone.blocks.0.attn.qkv.weight'
    assert not torch.equal(final['state_dict'][key], saved['state_dict'][key])


def test_dist_train_two_cpu_processes(toy_ytvis_root, tmp_path):
    work = str(tmp_path / 'dist')
    out = run_tool(
        ['bash', 'tools/dist_train.sh', TOY_CONFIG, '2', '--work-dir', work,
         '--cfg-options', 'train_cfg.max_iters=2',
         'train_cfg.val_interval=100', 'default_hooks.logger.interval=1',
         'train_dataloader.batch_size=1'] + toy_data_options(toy_ytvis_root),
        env=dict(PYTHON=PY, PORT='29517', OMP_NUM_THREADS='1'))
    assert 'Distributed training: True' in out
    assert 'World size: 2' in out or "'world_size': 2" in out or \
        'GPU number: 2' in out or 'world_size=2' in out
    ckpt = torch.load(osp.join(work, 'iter_2.pth'), map_location='cpu',
                      weights_only=False)
    assert ckpt['meta']['iter'] == 2
