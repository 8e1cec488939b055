"""Two gloo processes: probes, statistics and masks agree on both ranks,
and a resume counts every rank's statistics once."""
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _launch(work, out, *extra):
    worker = osp.join(osp.dirname(osp.abspath(__file__)),
                      'dist_p3b_worker.py')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
        f'--master_port={_free_port()}', worker,
        str(work), str(out), *extra
    ], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]


def test_two_process_gloo_run_has_identical_masks_and_resumes(tmp_path):
    out = tmp_path / 'out'
    out.mkdir()
    _launch(tmp_path / 'work', out)
    ranks = [torch.load(out / f'rank{r}.pth', weights_only=False)
             for r in (0, 1)]
    assert [r['world_size'] for r in ranks] == [2, 2]
    a, b = ranks
    # each rank saw different data (4 iterations of 16 of 128 images per
    # epoch), yet the reduced statistics give the same decisions
    assert [h['step'] for h in a['history']] == [6, 9, 12, 15, 18, 19]
    assert a['history'][-1]['finalized']
    assert a['history'] == b['history']
    for key, gate in a['gates'].items():
        assert torch.equal(gate, b['gates'][key]), key
    assert any((g == 0).any() for g in a['gates'].values())
    for key, value in a['weights'].items():
        assert torch.equal(value, b['weights'][key]), key
    assert a['exported']  # rank 0 wrote the slim model

    # Resume from epoch 2 (iteration 8): the checkpoint (written by rank
    # 0) holds benefit sums of iteration 7, after the update at 6. They must
    # be the sums of both ranks, counted once, so that the resumed run
    # makes the straight run's decisions.
    ckpt = osp.join(tmp_path, 'work', 'epoch_2.pth')
    state = torch.load(ckpt, map_location='cpu', weights_only=False)['p3b']
    assert float(state['stats']['benefit_count']) > 0
    _launch(tmp_path / 'work_resumed', out, ckpt)
    resumed = torch.load(out / 'resumed0.pth', weights_only=False)
    steps = [h['step'] for h in resumed['history']]
    assert steps == [6, 9, 12, 15, 18, 19]
    for ra, rb in zip(a['history'], resumed['history']):
        assert rb['importance'] == pytest.approx(ra['importance'], rel=1e-4,
                                                 abs=1e-9)
        assert rb['block_keep'] == pytest.approx(ra['block_keep'])
