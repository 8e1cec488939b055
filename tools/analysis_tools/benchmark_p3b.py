"""Parameters, FLOPs and CPU throughput of a dense vs P3B-slimmed DeiT.

    python tools/analysis_tools/benchmark_p3b.py [--arch deit-small]
        [--keep-ratios 0.5 0.25] [--width-multiples 8 1] [--batch 16]
        [--repeat 7] [--threads N]
        [--slim-checkpoint work_dirs/.../p3b/slim_model.pth
         --slim-config work_dirs/.../p3b/slim_model.py]
        [--out-dir work_dirs/benchmark_p3b]

Without ``--slim-config`` the slim models are made here: P3B's keep-ratio
solve with a uniform block budget and random Taylor scores on a randomly
initialised DeiT (speed depends on the kept widths, not on which elements
are kept), hard masks with the kept widths rounded to
``--width-multiples`` (8: P3BHook's default; 1: unrounded, as the
reference), then the registered ``SlimVisionTransformer`` is built from the
resulting ``slim_arch`` and loaded strictly. The dense and
all slim models are timed in the same process, interleaved round by round
(so load from other processes hits all of them alike), and the slim
models' outputs are checked against the masked dense model.

FLOPs of the backbone use ``mmsparse.utils.benchmark.count_flops``
(``mmengine.analysis``, fvcore convention: a multiply-add is one FLOP, with
a counter for fused attention).
"""
import argparse
import copy
import os.path as osp
import platform
import statistics
import time

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmsparse  # noqa: F401
from mmsparse.p3b import untrained_pruner
from mmsparse.registry import MODELS
from mmsparse.utils.benchmark import count_flops, format_table, write_json


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', default='deit-small')
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--num-classes', type=int, default=1000)
    parser.add_argument('--keep-ratios', type=float, nargs='+',
                        default=[0.5, 0.25])
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--repeat', type=int, default=7,
                        help='timed rounds (each model once per round)')
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--width-multiples', type=int, nargs='+',
                        default=[8, 1],
                        help='rounding of the kept widths (1 = none)')
    parser.add_argument('--slim-config', default=None,
                        help='slim_model.py written by P3BHook')
    parser.add_argument('--slim-checkpoint', default=None)
    parser.add_argument('--out-dir', default='work_dirs/benchmark_p3b')
    return parser.parse_args()


def dense_cfg(arch: str, img_size: int, num_classes: int) -> dict:
    from mmpretrain.models.backbones import VisionTransformer
    dims = VisionTransformer.arch_zoo[arch]['embed_dims']
    return dict(
        type='ImageClassifier',
        backbone=dict(type='VisionTransformer', arch=arch,
                      img_size=img_size, patch_size=16),
        neck=None,
        head=dict(type='VisionTransformerClsHead', num_classes=num_classes,
                  in_channels=dims))


def make_slim(model, cfg: dict, keep_ratio: float, seed: int,
              multiple: int):
    """Slim classifier at ``keep_ratio`` (uniform budget, random scores)."""
    pruner = untrained_pruner(model, keep_ratio, 'random', seed=seed,
                              width_multiple=multiple)
    slim_cfg = copy.deepcopy(cfg)
    slim_cfg['backbone'].update(type='SlimVisionTransformer',
                                slim_arch=pruner.slim_arch())
    slim = MODELS.build(slim_cfg)
    slim.load_state_dict(pruner.slim_state_dict(model), strict=True)
    slim.eval()
    return pruner, slim


def measure(models: dict, x: torch.Tensor, repeat: int) -> dict:
    times = {name: [] for name in models}
    with torch.no_grad():
        for model in models.values():  # warm-up
            model.backbone(x)
        for _ in range(repeat):
            for name, model in models.items():
                start = time.perf_counter()
                model.backbone(x)
                times[name].append(time.perf_counter() - start)
    return times


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    init_default_scope('mmpretrain')
    torch.manual_seed(args.seed)
    cfg = dense_cfg(args.arch, args.img_size, args.num_classes)
    dense = MODELS.build(copy.deepcopy(cfg))
    dense.eval()
    models, checks = {'dense': dense}, {}
    x = torch.randn(args.batch, 3, args.img_size, args.img_size)
    if args.slim_config:
        slim_cfg = Config.fromfile(args.slim_config).model
        slim = MODELS.build(slim_cfg)
        slim.eval()
        if args.slim_checkpoint:
            from mmengine.runner import load_checkpoint
            load_checkpoint(slim, args.slim_checkpoint, strict=True)
        models['slim (P3B run)'] = slim
    else:
        for kr in args.keep_ratios:
            for multiple in args.width_multiples:
                name = f'keep {kr:g}, widths x{multiple}'
                pruner, slim = make_slim(dense, cfg, kr, args.seed, multiple)
                with torch.no_grad():
                    pruner.gated.active = True
                    ref = dense.backbone(x[:2])[0]
                    pruner.gated.active = False
                    checks[name] = float(
                        (slim.backbone(x[:2])[0] - ref).abs().max())
                pruner.remove()
                models[name] = slim

    rows = []
    one = x[:1]
    dense_params = sum(p.numel() for p in dense.parameters())
    for name, model in models.items():
        flops = count_flops(model, one, fn=lambda t, m=model: m.backbone(t))
        params = sum(p.numel() for p in model.parameters())
        rows.append(dict(model=name, params_M=params / 1e6,
                         param_ratio=params / dense_params,
                         GFLOPs=flops['flops'] / 1e9,
                         uncounted=flops['uncounted']))
    times = measure(models, x, args.repeat)
    base = statistics.median(times['dense'])
    for row in rows:
        med = statistics.median(times[row['model']])
        row.update(
            ms_per_batch=1e3 * med,
            img_per_s=args.batch / med,
            speedup=base / med,
            gflops_ratio=row['GFLOPs'] / rows[0]['GFLOPs'],
            max_abs_diff_vs_masked=checks.get(row['model'], '-'))
    table = format_table(
        rows, ['model', 'params_M', 'param_ratio', 'GFLOPs', 'gflops_ratio',
               'ms_per_batch', 'img_per_s', 'speedup',
               'max_abs_diff_vs_masked'],
        ['model', 'params (M)', 'params / dense', 'backbone GFLOPs (1 img)',
         'FLOPs / dense', f'backbone ms / batch {args.batch}', 'img / s',
         'speed-up', 'max |slim - masked|'])
    env = dict(arch=args.arch, img_size=args.img_size, batch=args.batch,
               repeat=args.repeat, threads=torch.get_num_threads(),
               cpu=platform.processor() or platform.machine(),
               torch=torch.__version__,
               allocation='uniform block budget, random Taylor scores'
               if not args.slim_config else args.slim_config)
    print(table)
    print(env)
    write_json(dict(env=env, rows=rows,
                    times={k: v for k, v in times.items()}),
               osp.join(args.out_dir, 'benchmark_p3b.json'))
    with open(osp.join(args.out_dir, 'benchmark_p3b.md'), 'w') as f:
        f.write(table + '\n\n' + str(env) + '\n')


if __name__ == '__main__':
    main()
