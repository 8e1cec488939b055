"""Save the freshly initialised model of a config as a checkpoint.

The "untrained" reference of the demo and of the README's AP table:
``python tools/misc/init_checkpoint.py CONFIG OUT.pth [--seed 0]`` builds the
model exactly as ``tools/train.py`` would at iteration 0 (``init_weights``
included) and saves it in the format ``tools/test.py`` loads.
"""
import argparse
import os
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope
from mmengine.runner import set_random_seed

import mmsparse  # noqa: F401
from mmsparse.registry import MODELS


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('out')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()

    cfg = Config.fromfile(args.config)
    if not DefaultScope.check_instance_created('mmsparse-init'):
        init_default_scope(cfg.get('default_scope', 'mmdet'))
    set_random_seed(args.seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    torch.save(
        dict(
            meta=dict(seed=args.seed, note='untrained (init_weights)'),
            state_dict=model.state_dict()), args.out)
    print(f'saved the initialised model of {args.config} to {args.out}')


if __name__ == '__main__':
    main()
