"""ARTHook under 2 CPU processes (gloo): identical masks on every rank."""
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


def test_two_process_gloo_identical_masks(tmp_path):
    worker = osp.join(osp.dirname(osp.abspath(__file__)), 'dist_art_worker.py')
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
    a, b = ranks[0]['summary'], ranks[1]['summary']
    assert a['phase'] == 'finetune' and a['masks'] is not None
    # statistics are all-reduced: same window, history, decisions, masks
    assert a == b
    # parameters are identical (BN running stats are per rank, as in DDP)
    for key, value in ranks[0]['weights'].items():
        assert torch.equal(value, ranks[1]['weights'][key]), key
