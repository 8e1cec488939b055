"""tools/analysis_tools/benchmark.py on a VPP config: dense vs VPP schedules
side by side in one run (it hands over to benchmark_vpp.py), streaming and
offline, table + JSON; the rows' code in mmsparse.utils.vpp_benchmark."""
import json
import logging
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.logging import MMLogger
from vis_helpers import ROOT

from mmsparse.utils import vis_benchmark, vpp_benchmark

VPP_TOY = osp.join('configs', 'toy', 'vpp_mask2former_vit_toy-ytvis21.py')


def test_benchmark_tool_compares_dense_and_vpp_schedules(tmp_path):
    out = tmp_path / 'vpp.json'
    proc = subprocess.run(
        [sys.executable, 'tools/analysis_tools/benchmark.py', VPP_TOY,
         '--schedules', 'dense', '1:0.7,3:0.5', '1:0.5@keepset',
         '--keep-ratios', '0.5',
         '--shape', '64', '128', '--frames', '2', '--repeat', '1',
         '--threads', '1', '--out', str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    # the printed tables: per-block patches beside the PKR, both modes
    assert '| row | PKR | patches per block |' in proc.stdout
    assert 'streaming ms' in proc.stdout and 'offline ms/frame' in proc.stdout
    assert '| row | backbone ms | backbone GFLOPs | input projections ms' \
        in proc.stdout
    result = json.loads(out.read_text())
    dense, staged, keep_set, single = result['rows']
    assert [r['row'] for r in result['rows']] == \
        ['dense', '1:0.7,3:0.5', '1:0.5@keepset', '1:0.5']
    assert keep_set['pixel_decoder'] == \
        'KeepSetPixelDecoder(input, keep_set)'
    assert single['pixel_decoder'] == 'MSDeformAttnPixelDecoder'
    assert dense['keep_ratio'] == [1.0] and single['keep_ratio'] == [0.5]
    assert staged['prune_layer'] == [1, 3]
    # toy ViT: 6 blocks, 4 x 8 = 32 patches; block 0 dense
    assert dense['patches_per_block'] == [32] * 6
    assert staged['patches_per_block'] == [32, 22, 22, 16, 16, 16]
    assert single['patches_per_block'] == [32] + [16] * 5
    assert '32 22 22 16 16 16' in proc.stdout
    assert dense['frame_pkr'] == 1.0
    assert staged['frame_pkr'] == pytest.approx((32 + 2 * 22 + 3 * 16) /
                                                (6 * 32))
    assert single['frame_pkr'] == pytest.approx((1 + 5 * 0.5) / 6)
    # a 2-frame clip: frame 0 dense, frame 1 pruned
    assert single['video_pkr'] == pytest.approx(
        (1 + single['frame_pkr']) / 2)
    # the ViT's FLOPs shrink with the kept patches; the pyramid does not
    assert single['vit_GFLOPs'] < 0.7 * dense['vit_GFLOPs']
    pyramid = dense['backbone_GFLOPs'] - dense['vit_GFLOPs']
    assert abs((single['backbone_GFLOPs'] - single['vit_GFLOPs']) -
               pyramid) < 1e-3 * dense['backbone_GFLOPs']
    # offline: the dense first frame of the clip counts
    assert dense['offline_GFLOPs_per_frame'] == pytest.approx(
        dense['backbone_GFLOPs'], rel=1e-3)
    assert single['backbone_GFLOPs'] < single['offline_GFLOPs_per_frame'] \
        < dense['offline_GFLOPs_per_frame']
    for row in (dense, staged, single):
        assert row['backbone_ms'] > 0 and row['offline_ms_per_frame'] > 0
        assert row['model_ms'] > row['backbone_ms']
        assert row['backbone_ideal_x'] == dense['backbone_GFLOPs'] / \
            row['backbone_GFLOPs']
        assert row['offline_measured_x'] == dense['offline_ms_per_frame'] / \
            row['offline_ms_per_frame']
        # the profile: every part timed; the FLOPs parts add up to the model
        assert set(row['part_ms']) == set(row['part_GFLOPs'])
        assert all(v >= 0 for v in row['part_GFLOPs'].values())
        assert sum(row['part_GFLOPs'].values()) == pytest.approx(
            row['model_GFLOPs'], rel=1e-6)
        assert row['part_ms']['backbone'] == row['backbone_ms']
        assert len(row['part_runs_s']) == 1  # --repeat 1, warm-up left out
    # the keep-set decoder: same backbone as the VPP row, fewer encoder and
    # FPN FLOPs (half the positions), the transformer decoder unchanged
    for part in ('backbone', 'input projections', 'transformer decoder'):
        assert keep_set['part_GFLOPs'][part] == pytest.approx(
            single['part_GFLOPs'][part], rel=1e-6)
    for part in ('deformable encoder', 'FPN + mask features'):
        assert keep_set['part_GFLOPs'][part] < 0.8 * single['part_GFLOPs'][part]
        assert single['part_GFLOPs'][part] == pytest.approx(
            dense['part_GFLOPs'][part], rel=1e-6)


def test_schedule_syntax():
    tool = vpp_benchmark
    paper = '1:0.7,3:0.56,6:0.448,9:0.358'
    assert tool.parse_schedule(paper) == ([1, 3, 6, 9],
                                          [0.7, 0.56, 0.448, 0.358])
    assert tool.schedule_name(*tool.parse_schedule(paper)) == paper
    assert tool.parse_schedule('dense') == ([1], [1.0])
    assert tool.parse_schedule('config') is None
    for bad in ('1-0.4', '1:a', '0.4', '1:0.4:2'):
        with pytest.raises(ValueError, match=f"schedule '{bad}'"):
            tool.parse_schedule(bad)


class ListHandler(logging.Handler):

    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_dense_row_loads_a_vpp_checkpoint_without_selector_warnings(
        tmp_path):
    bench, tool = vpp_benchmark, vis_benchmark
    config = osp.join(ROOT, VPP_TOY)
    no_download = {'model.backbone.backbone.init_cfg': None}
    vpp = tool.build(config, None, dict(no_download,
                                        **{'model.backbone.keep_ratio': 0.5}))
    state = vpp.state_dict()
    selectors = [k for k in state if k.startswith('backbone.pruner.')]
    assert selectors  # the VPP model has selector heads
    logger = logging.getLogger('test_benchmark_vpp_dense_row')
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = ListHandler()
    logger.addHandler(handler)
    dense_opts = dict(no_download, **{'model.backbone.prune_layer': [1],
                                      'model.backbone.keep_ratio': [1.0]})

    def load(state_dict):
        path = str(tmp_path / 'vpp.pth')
        torch.save(dict(state_dict=state_dict), path)
        handler.messages.clear()
        model = bench.build_row(config, path, dense_opts, logger)
        return model, '\n'.join(handler.messages)

    model, log = load(state)
    assert model.backbone.pruner.dense
    assert not any(k.startswith('backbone.pruner.')
                   for k in model.state_dict())
    assert f'dense row: {len(selectors)} VPP selector tensors' in log
    assert 'unexpected key' not in log and 'missing key' not in log
    # the shared weights did load
    key = 'backbone.backbone.blocks.0.attn.qkv.weight'
    assert torch.equal(model.state_dict()[key], state[key])
    # a genuinely wrong key (and a missing one) are still reported
    wrong = dict(state)
    wrong['backbone.backbone.bogus'] = torch.zeros(1)
    del wrong[key]
    _, log = load(wrong)
    assert 'unexpected key in source state_dict: backbone.backbone.bogus' \
        in log
    assert f'missing keys in source state_dict: {key}' in log
    assert 'backbone.pruner.' not in log.split('not loaded')[-1]


INIT_REPORT = 'The value is the same before and after calling `init_weights`'


def fresh_logger(monkeypatch):
    """A new MMLogger as mmengine's current instance (at DEBUG, with a list
    handler), without a FileHandler of an earlier Runner (which would take
    init_weights' report instead of the console). Made in the test body so
    that it prints to the test's captured stdout; the previous current
    instance is current again after the test."""
    logger = MMLogger('test_benchmark_quiet', logger_name='mmengine')
    monkeypatch.setitem(MMLogger._instance_dict, 'test_benchmark_quiet',
                        logger)
    assert MMLogger.get_current_instance() is logger
    logger.setLevel(logging.DEBUG)
    handler = ListHandler()
    logger.addHandler(handler)
    return logger, handler


def test_building_a_row_prints_no_init_weights_report(monkeypatch, capfd):
    """A row built by the tools (init_weights, no checkpoint) logs no
    per-parameter report, and the logger's level is restored afterwards;
    verbose=True (--verbose) keeps the report."""
    logger, handler = fresh_logger(monkeypatch)
    bench, tool = vpp_benchmark, vis_benchmark
    config = osp.join(ROOT, VPP_TOY)
    opts = {'model.backbone.backbone.init_cfg': None,
            'model.backbone.keep_ratio': 0.5}
    capfd.readouterr()
    model = bench.build_row(config, None, opts)
    out, err = capfd.readouterr()
    assert model.backbone.pruner is not None
    assert 'init_weights' not in out + err and 'torch.Size' not in out + err
    assert not [m for m in handler.messages if 'init_weights' in m]
    assert logger.level == logging.DEBUG
    # the same build with verbose=True: the report is there
    tool.build(config, None, opts, verbose=True)
    out, err = capfd.readouterr()
    assert INIT_REPORT in out
    # one entry per parameter
    assert sum(' - torch.Size([' in m for m in handler.messages) == \
        len(list(model.parameters()))
    assert logger.level == logging.DEBUG


def test_quiet_model_logs_restores_the_level_on_errors(monkeypatch):
    logger, handler = fresh_logger(monkeypatch)
    tool = vis_benchmark
    with pytest.raises(RuntimeError, match='boom'):
        with tool.quiet_model_logs():
            assert logger.level == logging.WARNING
            logger.info('hidden')
            logger.warning('shown')
            raise RuntimeError('boom')
    assert logger.level == logging.DEBUG
    assert handler.messages == ['shown']
    logger.setLevel(logging.ERROR)  # a stricter level stays
    with tool.quiet_model_logs():
        assert logger.level == logging.ERROR
    assert logger.level == logging.ERROR
