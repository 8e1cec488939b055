"""One rank of the 2-process gloo P3B runs of test_p3b_dist.py.

Usage (torchrun sets RANK, WORLD_SIZE, ...):
    python -m torch.distributed.run --nproc_per_node=2 \
        tests/p3b/dist_p3b_worker.py WORK_DIR OUT_DIR [RESUME_CHECKPOINT]
"""
import os
import os.path as osp
import sys

import torch
from mmengine.config import Config
from mmengine.runner import Runner

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from p3b_helpers import HOOK, p3b_hook, tiny_cfg  # noqa: E402

from mmsparse.utils.launch import prepare_launch  # noqa: E402

#: updates every 3 iterations: the epoch checkpoints (every 4) fall between
#: two updates, with partial benefit sums in them
DIST_HOOK = dict(HOOK, update_interval=3)


def main(work_dir: str, out_dir: str, resume_from: str = None) -> None:
    torch.set_num_threads(1)
    cfg = Config(tiny_cfg(work_dir, DIST_HOOK, max_epochs=5, ckpt_interval=1,
                          samples=128))
    cfg.experiment_name = 'p3b_dist_test'
    cfg.launcher = 'pytorch'
    if resume_from:
        cfg.resume = True
        cfg.load_from = resume_from
    prepare_launch(cfg)
    runner = Runner.from_cfg(cfg)
    runner.train()
    pruner = p3b_hook(runner).pruner
    model = runner.model.module
    name = 'resumed' if resume_from else 'rank'
    torch.save(
        dict(world_size=runner.world_size,
             gates={k: g.detach().clone()
                    for k, g in pruner.gated.gates.items()},
             history=pruner.history,
             weights={k: v.detach().clone()
                      for k, v in model.state_dict().items()},
             exported=osp.isfile(osp.join(work_dir, 'p3b',
                                          'slim_model.pth'))),
        osp.join(out_dir, f'{name}{os.environ["RANK"]}.pth'))


if __name__ == '__main__':
    main(*sys.argv[1:])
