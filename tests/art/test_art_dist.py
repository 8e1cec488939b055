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


def _launch(tmp_path, worker_name):
    worker = osp.join(osp.dirname(osp.abspath(__file__)), worker_name)
    out = tmp_path / 'out'
    out.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
        f'--master_port={_free_port()}', worker,
        str(tmp_path / 'work'), str(out)
    ], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    return out


def test_two_process_gloo_identical_masks(tmp_path):
    out = _launch(tmp_path, 'dist_art_worker.py')
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


def test_two_process_resume_mid_step_counts_each_rank_once(tmp_path):
    """The running training score of an ART step is summed over ranks as it
    accumulates; a checkpoint in the middle of the step (written by rank 0)
    therefore resumes to the same dense score, instead of counting rank 0's
    partial sum once per rank."""
    out = _launch(tmp_path, 'dist_art_resume_worker.py')
    for rank in (0, 1):
        res = torch.load(out / f'resume_rank{rank}.pth', weights_only=False)
        assert len(res['full']) == 2
        assert res['resumed'] == res['full'], res
