"""λ·‖∇R‖ of ARTHook's regularizer against the gradient clipping norm.

Once ``λ·‖∇R‖`` approaches ``clip_grad.max_norm``, clipping of the summed
gradient scales the task gradient down with it (``ARTHook(clip_regularizer=
False)`` adds ``λ·∇R`` after clipping instead).

Two measurements:

* ``--static``: build the config's model (no pretrained weights), and report
  ``‖∇R‖`` at initialisation and ``λ·‖∇R‖`` for λ0 and for the largest λ
  the ART schedule of the config can reach, against the clip norm;
* ``--iters N``: train the config for N iterations on the toy YouTube-VIS set
  (made in a temporary folder) with ART from the first iteration, and print
  per iteration λ·‖∇R‖ and the clipped gradient norm mmengine logs.

Usage:
    python projects/hypersparse/measure_reg_grad_vs_clip.py CONFIG --static
    python projects/hypersparse/measure_reg_grad_vs_clip.py CONFIG \
        --iters 12 [--hook-options clip_regularizer=False]
"""
import argparse
import copy
import tempfile

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import mmsparse  # noqa: F401
from mmsparse.art import prunable_weights, regularizer_stats


def art_hook_cfg(cfg):
    hooks = [h for h in cfg.custom_hooks if h['type'] == 'ARTHook']
    if not hooks:
        raise ValueError('the config has no ARTHook')
    return hooks[0]


def static(cfg):
    from mmsparse.engine.hooks import ARTHook
    from mmsparse.registry import MODELS
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    hook = ARTHook(**{k: v for k, v in art_hook_cfg(cfg).items()
                      if k != 'type'})
    model = MODELS.build(cfg.model)
    weights = prunable_weights(model, hook.exclude, hook.include_frozen,
                               prune_only=hook.prune_only)
    stats = regularizer_stats(hook.regularizer, weights.values(),
                              hook.target_sparsity)
    total = cfg.train_cfg.get('max_iters') or cfg.train_cfg.get('max_epochs')
    steps = max((total - hook.warmup - hook.min_finetune) // hook.interval,
                0)
    if hook.max_art_steps is not None:
        steps = min(steps, hook.max_art_steps)
    lam_max = hook.lambda_init * hook.eta**max(steps - 1, 0)
    clip = (cfg.optim_wrapper.get('clip_grad') or {}).get('max_norm')
    n = sum(w.numel() for w in weights.values())
    print(f'{len(weights)} prunable tensors, {n} weights; regularizer '
          f'{hook.regularizer}, κ={hook.target_sparsity}')
    print(f'‖∇R‖ at initialisation: {stats["grad_norm"]:.4g}')
    print(f'λ0·‖∇R‖ = {hook.lambda_init * stats["grad_norm"]:.4g}; after '
          f'{steps} ART steps λ = {lam_max:.3g}, λ·‖∇R‖ = '
          f'{lam_max * stats["grad_norm"]:.4g} (at the initial ‖∇R‖)')
    print(f'clip_grad.max_norm = {clip}')


def trained(cfg, iters, hook_options):
    from mmsparse.datasets.toy_ytvis import make_toy_ytvis
    from mmsparse.datasets.ytvis_convert import convert_youtubevis
    root = tempfile.mkdtemp(prefix='toy_ytvis_') + '/'
    make_toy_ytvis(root, num_videos=8, num_frames=4, seed=1)
    convert_youtubevis(root, version='2021', heldout_ratio=0.25, seed=0,
                       log=None)
    for split in ('train', 'val', 'test'):
        cfg.merge_from_dict({f'{split}_dataloader.dataset.data_root': root})
    cfg.train_cfg.max_iters = iters + 1
    cfg.train_cfg.val_interval = 10**6
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook',
                                        interval=10**6)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    hook = art_hook_cfg(cfg)
    hook.update(warmup=0, interval=iters, min_finetune=0, eval_batches=1,
                stats_interval=1, max_art_steps=1, plot=False)
    hook.update(hook_options)
    cfg.custom_hooks = [hook]
    cfg.work_dir = tempfile.mkdtemp(prefix='reg_grad_')
    runner = Runner.from_cfg(cfg)
    runner.train()
    hub = runner.message_hub
    reg, _ = hub.get_scalar('train/art_reg_grad').data
    grad, _ = hub.get_scalar('train/grad_norm').data
    clip = (cfg.optim_wrapper.get('clip_grad') or {}).get('max_norm')
    print(f'clip_grad.max_norm = {clip}; λ = {hook["lambda_init"]:g}')
    print('| iter | λ·‖∇R‖ | ‖g‖ before clipping |')
    print('|---:|---:|---:|')
    for i, (r, g) in enumerate(zip(reg, grad[:len(reg)])):
        print(f'| {i + 1} | {float(r):.4g} | {float(g):.4g} |')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--static', action='store_true')
    parser.add_argument('--iters', type=int, default=0)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--hook-options', nargs='+', action=DictAction,
                        default={})
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = Config.fromfile(args.config)
    if args.static:
        static(copy.deepcopy(cfg))
    if args.iters:
        trained(copy.deepcopy(cfg), args.iters, args.hook_options)


if __name__ == '__main__':
    main()
