"""One rank of the 2-process gloo ART run of test_art_dist.py.

Usage (torchrun sets RANK, WORLD_SIZE, ...):
    python -m torch.distributed.run --nproc_per_node=2 \
        tests/art/dist_art_worker.py WORK_DIR OUT_DIR
"""
import os
import os.path as osp
import sys

import torch
from mmengine.config import Config
from mmengine.runner import Runner

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from art_helpers import get_hook, hook_summary, tiny_cfg, weights_of  # noqa

from mmsparse.engine.hooks import ARTHook  # noqa: E402
from mmsparse.utils.launch import prepare_launch  # noqa: E402


def main(work_dir: str, out_dir: str) -> None:
    hook = dict(
        type='ARTHook',
        target_sparsity=0.9,
        warmup=1,
        max_art_steps=2,
        lambda_init=1e-3,
        eta=1.5,
        dense_reference='eval')
    cfg = Config(tiny_cfg(work_dir, [hook], max_epochs=4, ckpt_interval=4))
    cfg.experiment_name = 'art_dist_test'
    cfg.launcher = 'pytorch'
    prepare_launch(cfg)
    runner = Runner.from_cfg(cfg)
    runner.train()
    art = get_hook(runner, ARTHook)
    torch.save(
        dict(
            summary=hook_summary(art),
            weights=weights_of(runner, params_only=True),
            world_size=runner.world_size),
        osp.join(out_dir, f'rank{os.environ["RANK"]}.pth'))


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
