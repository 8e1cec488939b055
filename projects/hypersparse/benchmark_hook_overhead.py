"""Step-time overhead of a pruning hook against the same config without it.

Runs the config twice (without and with its pruning hook) for the same
number of iterations and compares the median iteration time (IterTimerHook,
i.e. data + forward/backward + optimizer + hooks), per phase of the hook,
and the total wall time (which includes ART's per-step evaluation pass).

Usage:
    python projects/hypersparse/benchmark_hook_overhead.py CONFIG \
        [--epochs 3 | --iters 30] [--hook-options key=value ...]
        [--repeat 2] [--threads 1] [--work-dir work_dirs/overhead]
"""
import argparse
import copy
import statistics
import time

import torch
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

import mmsparse  # noqa: F401

PRUNING_HOOKS = ('ARTHook', 'OneShotMagnitudePruningHook',
                 'GradualMagnitudePruningHook')


def run(cfg, work_dir):
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = work_dir
    runner = Runner.from_cfg(cfg)
    start = time.perf_counter()
    runner.train()
    wall = time.perf_counter() - start
    times, _ = runner.message_hub.get_scalar('train/time').data
    phases = None
    if runner.message_hub.log_scalars.get('train/art_phase') is not None:
        phases, _ = runner.message_hub.get_scalar('train/art_phase').data
    return list(map(float, times)), phases, wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--epochs', type=int)
    parser.add_argument('--iters', type=int)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--repeat', type=int, default=2,
                        help='alternating pairs of runs')
    parser.add_argument('--work-dir', default='work_dirs/overhead')
    parser.add_argument('--hook-options', nargs='+', action=DictAction,
                        default={})
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.epochs:
        cfg.train_cfg.max_epochs = args.epochs
    if args.iters:
        cfg.train_cfg.max_iters = args.iters
        cfg.train_cfg.val_interval = args.iters + 1
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.train_cfg.pop('val_interval', None)
    cfg.train_cfg.pop('val_begin', None)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=10**6)
    hooks = cfg.get('custom_hooks', [])
    idx = [i for i, h in enumerate(hooks) if h['type'] in PRUNING_HOOKS]
    if not idx:
        raise ValueError(f'{args.config} has no pruning hook')
    with_hook = copy.deepcopy(cfg)
    with_hook.custom_hooks[idx[0]].update(args.hook_options)
    without = copy.deepcopy(cfg)
    without.custom_hooks = [h for i, h in enumerate(hooks) if i not in idx]
    if without.get('param_scheduler') is None:
        without.param_scheduler = None
    print(f'config: {args.config}')
    print(f'hook: {with_hook.custom_hooks[idx[0]]}')
    # alternate the two runs so that both see the same machine load
    base_times, hook_times, phases = [], [], []
    base_wall = hook_wall = 0.0
    for r in range(args.repeat):
        times, _, wall = run(without, f'{args.work_dir}/without_{r}')
        base_times += times[2:]  # skip start-up iterations
        base_wall += wall
        times, ph, wall = run(with_hook, f'{args.work_dir}/with_{r}')
        hook_times += times[2:]
        phases += list(ph[2:]) if ph is not None else [-1] * len(times[2:])
        hook_wall += wall
    base = statistics.median(base_times)
    print(f'median iteration time without hook: {1e3 * base:.1f} ms '
          f'({len(base_times)} iterations)')
    for code, name in enumerate(('warmup', 'art', 'finetune')):
        sel = [t for t, p in zip(hook_times, phases) if p == code]
        if len(sel) >= 3:
            med = statistics.median(sel)
            print(f'median iteration time in {name}: {1e3 * med:.1f} ms '
                  f'(ratio {med / base:.3f}, {len(sel)} iterations)')
    if all(p == -1 for p in phases):
        med = statistics.median(hook_times)
        print(f'median iteration time with hook: {1e3 * med:.1f} ms '
              f'(ratio {med / base:.3f})')
    print(f'wall time of train(): {base_wall:.1f} s without, {hook_wall:.1f} '
          f's with the hook (ratio {hook_wall / base_wall:.3f}; includes '
          "ART's evaluation pass per step)")


if __name__ == '__main__':
    main()
