"""One rank of the 2-process gloo resume test of test_art_dist.py: an ART run
with the running training accuracy as dense reference, checkpointed in the
middle of an ART step, and its resume.

Usage (torchrun sets RANK, WORLD_SIZE, ...):
    python -m torch.distributed.run --nproc_per_node=2 \
        tests/art/dist_art_resume_worker.py WORK_DIR OUT_DIR
"""
import os
import os.path as osp
import sys

import torch
from mmengine.config import Config
from mmengine.runner import Runner

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from art_helpers import get_hook, tiny_cfg  # noqa

from mmsparse.engine.hooks import ARTHook  # noqa: E402
from mmsparse.utils.launch import prepare_launch  # noqa: E402


def _run(work_dir: str, name: str, **overrides) -> list:
    # ART steps of 2 epochs after 1 warm-up epoch: epoch_2 is mid-step
    hook = dict(
        type='ARTHook',
        target_sparsity=0.9,
        warmup=1,
        interval=2,
        max_art_steps=2,
        lambda_init=1e-3,
        eta=1.5,
        dense_reference='train',
        plot=False)
    cfg = Config(tiny_cfg(work_dir, [hook], max_epochs=6, ckpt_interval=1))
    cfg.merge_from_dict(overrides)
    cfg.experiment_name = f'art_dist_{name}'
    cfg.launcher = 'pytorch'
    prepare_launch(cfg)
    runner = Runner.from_cfg(cfg)
    runner.train()
    return [r['dense'] for r in get_hook(runner, ARTHook).history]


def main(work_dir: str, out_dir: str) -> None:
    full = _run(osp.join(work_dir, 'full'), 'full')
    ckpt = osp.join(work_dir, 'full', 'epoch_2.pth')
    resumed = _run(osp.join(work_dir, 'resumed'), 'resumed', resume=True,
                   load_from=ckpt)
    torch.save(dict(full=full, resumed=resumed),
               osp.join(out_dir, f'resume_rank{os.environ["RANK"]}.pth'))


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
