"""tools/analysis_tools/benchmark_p3b_probes.py times folded and activation
gates in one run and writes the operator profile (tiny DeiT, one round)."""
import json
import os.path as osp
import subprocess
import sys

from vis_helpers import ROOT


def test_benchmark_times_folded_and_activation_gates(tmp_path):
    out = tmp_path / 'bench'
    cmd = [sys.executable, 'tools/analysis_tools/benchmark_p3b_probes.py',
           '--arch', 'deit-tiny', '--img-size', '32', '--num-classes', '10',
           '--batches', '2', '--repeat', '1', '--threads', '1', '--variants',
           'gates only', 'gates only, activation gates', '--profile',
           '--out-dir', str(out)]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True,
                   timeout=300)
    rows = json.load(open(osp.join(out, 'probe_cost.json')))['rows']
    assert [r['variant'] for r in rows] == [
        'dense', 'gates only', 'gates only, activation gates']
    assert all(r['s_per_step'] > 0 for r in rows)
    profile = open(osp.join(out, 'profile_b2.txt')).read()
    assert '== gates only, activation gates (batch 2)' in profile
