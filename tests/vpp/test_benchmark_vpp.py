"""tools/analysis_tools/benchmark.py on a VPP config: dense vs VPP side by
side in one run (it hands over to benchmark_vpp.py), table + JSON."""
import json
import os
import os.path as osp
import subprocess
import sys

from vis_helpers import ROOT

VPP_TOY = osp.join('configs', 'toy', 'vpp_mask2former_vit_toy-ytvis21.py')


def test_benchmark_tool_compares_dense_and_vpp(tmp_path):
    out = tmp_path / 'vpp.json'
    proc = subprocess.run(
        [sys.executable, 'tools/analysis_tools/benchmark.py', VPP_TOY,
         '--keep-ratios', '1.0', '0.5', '--shape', '64', '128', '--frames',
         '2', '--repeat', '1', '--threads', '1', '--out', str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert '| keep | PKR |' in proc.stdout  # the printed table
    result = json.loads(out.read_text())
    dense, vpp = result['rows']
    assert dense['keep_ratio'] == 1.0 and vpp['keep_ratio'] == 0.5
    # toy ViT: 6 blocks, block 0 dense, blocks 1-5 on half of the patches
    assert dense['frame_pkr'] == 1.0
    assert abs(vpp['frame_pkr'] - (1 + 5 * 0.5) / 6) < 1e-6
    # the ViT's FLOPs shrink with the kept patches; the pyramid does not
    assert vpp['vit_GFLOPs'] < 0.7 * dense['vit_GFLOPs']
    pyramid = dense['backbone_GFLOPs'] - dense['vit_GFLOPs']
    assert abs((vpp['backbone_GFLOPs'] - vpp['vit_GFLOPs']) - pyramid) < \
        1e-3 * dense['backbone_GFLOPs']
    for row in (dense, vpp):
        assert row['backbone_ms'] > 0 and row['model_ms'] > row['backbone_ms']
        assert row['backbone_ideal_x'] == dense['backbone_GFLOPs'] / \
            row['backbone_GFLOPs']
