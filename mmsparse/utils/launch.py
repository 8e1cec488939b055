"""Launch-time adjustments shared by ``tools/train.py`` and ``tools/test.py``."""
import os

import torch
import torch.distributed as torch_dist


def prepare_launch(cfg) -> None:
    """Make a distributed launch work on machines without GPUs.

    mmengine's ``pytorch`` launcher calls ``torch.cuda.set_device`` and wraps
    the model in DDP with ``device_ids=[LOCAL_RANK]``; both fail on a CPU-only
    machine. Without CUDA this switches the backend to gloo, initialises the
    process group itself (mmengine then skips ``init_dist``) and wraps the
    model with ``device_ids=None``. With CUDA nothing changes.

    Args:
        cfg (mmengine.Config): The run config, ``cfg.launcher`` already set.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    dist_cfg['backend'] = 'gloo'
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    if launcher == 'pytorch' and not torch_dist.is_initialized():
        torch_dist.init_process_group(
            backend='gloo',
            rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']))
