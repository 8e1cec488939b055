"""tools/analysis_tools/benchmark_p3b.py runs end to end on a tiny DeiT."""
import json
import os.path as osp
import subprocess
import sys

from vis_helpers import ROOT


def test_benchmark_p3b_tiny(tmp_path):
    out = tmp_path / 'bench'
    cmd = [sys.executable, 'tools/analysis_tools/benchmark_p3b.py', '--arch', 'deit-tiny',
           '--img-size', '64', '--num-classes', '10', '--keep-ratios', '0.5', '--batch', '1',
           '--repeat', '1', '--threads', '1', '--width-multiples', '1', '--out-dir', str(out)]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, timeout=300)
    rows = json.load(open(osp.join(out, 'benchmark_p3b.json')))['rows']
    assert [r['model'] for r in rows] == ['dense', 'keep 0.5, widths x1']
    slim = rows[1]
    assert abs(slim['param_ratio'] - 0.5) < 0.02
    assert slim['GFLOPs'] < rows[0]['GFLOPs']
    assert slim['max_abs_diff_vs_masked'] < 1e-4  # the slim model is the masked one
    assert osp.isfile(osp.join(out, 'benchmark_p3b.md'))
