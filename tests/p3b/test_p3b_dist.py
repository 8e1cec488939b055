"""Two gloo processes: probes, statistics and masks agree on both ranks."""
import os
import os.path as osp
import socket
import subprocess
import sys

import torch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_process_gloo_run_has_identical_masks(tmp_path):
    worker = osp.join(osp.dirname(osp.abspath(__file__)),
                      'dist_p3b_worker.py')
    out = tmp_path / 'out'
    out.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
        f'--master_port={_free_port()}', worker,
        str(tmp_path / 'work'), str(out)
    ], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    ranks = [torch.load(out / f'rank{r}.pth', weights_only=False)
             for r in (0, 1)]
    assert [r['world_size'] for r in ranks] == [2, 2]
    a, b = ranks
    # each rank saw different data (4 iterations of 16 of 128 images per
    # epoch), yet the reduced statistics give the same decisions
    assert len(a['history']) == 8 and a['history'][-1]['finalized']
    assert a['history'] == b['history']
    for key, gate in a['gates'].items():
        assert torch.equal(gate, b['gates'][key]), key
    assert any((g == 0).any() for g in a['gates'].values())
    for key, value in a['weights'].items():
        assert torch.equal(value, b['weights'][key]), key
    assert a['exported']  # rank 0 wrote the slim model
