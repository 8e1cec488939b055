"""Deploy benchmark: sparse kernels for ART, onnxruntime for P3B / VPP.

    python tools/analysis_tools/benchmark_deploy.py
        [--sections kernels art onnx] [--threads 2] [--rounds 5]
        [--rounds-large 3] [--batch 64]
        [--sparsities 0.5 0.7 0.8 0.9 0.98 0.995]
        [--large-sparsities 0.9 0.98 0.995] [--vpp-shape 368 640]
        [--out-dir work_dirs/benchmark_deploy]

Three sections, each a table (markdown on stdout and in
``OUT_DIR/benchmark_deploy.md``; every run in ``benchmark_deploy.json``):

* ``kernels``: one ViT-S linear layer (in x out: 384x1152 qkv, 384x384
  proj, 384x1536 fc1, 1536x384 fc2) on 197 tokens (batch 1) and
  ``197 * batch`` tokens, weights at 90 / 98 / 99.5 % random sparsity:
  the dense ``F.linear`` against each sparse kernel of
  :data:`mmsparse.utils.sparse_layers.KERNELS` (the layer's own forward).
* ``art``: whole models with global magnitude masks (one threshold over
  the prunable weights, drawn from one normal distribution first): a DeiT-S
  classifier (every ``nn.Linear``, 224x224) and ResNet-32-w2 (every
  convolution and the classifier, 32x32). The masked dense model against
  the same model after
  :func:`~mmsparse.utils.sparse_layers.sparsify_model` (CSR; every pruned
  linear and convolution swapped, ``min_sparsity=0.25``), at batch 1
  for every ``--sparsities`` and at ``--batch`` for ``--large-sparsities``;
  the largest difference of the logits and backbone features, and the
  break-even sparsity
  (linear interpolation of the speed-up between the measured sparsities).
* ``onnx``: PyTorch eager against onnxruntime (CPU, fp32, the same
  threads), dense against pruned: a DeiT-S classifier (``--cls-batch``) and its
  P3B-slim version at keep 0.5 (uniform block budget, random scores,
  widths rounded to 8 as ``P3BHook`` does); the dense ``ViTPyramid``
  (ViT-S) backbone and its ``VPPBackbone`` at the paper's ViT-S schedule
  (keep 0.7 / 0.56 / 0.448 / 0.358 from blocks 1 / 3 / 6 / 9; a pruned
  frame in steady state, prior from the frame before). FLOPs (fvcore
  convention) give the ideal ratio; ``speed-up / FLOPs ratio`` is how much
  of it the runtime realises.

Timings are interleaved: every round runs each row of a table once, the
median over rounds is reported (``mmsparse.utils.benchmark``).
"""
import argparse
import copy
import os
import os.path as osp
import platform
import statistics
import tempfile

import torch
import torch.nn.functional as F

from mmsparse.utils.benchmark import (count_flops, format_table,
                                      time_interleaved, write_json)
from mmsparse.utils.sparse_layers import KERNELS, SparseLinear, sparsify_model

VIT_LINEARS = ((384, 1152, 'qkv'), (384, 384, 'proj'), (384, 1536, 'fc1'),
               (1536, 384, 'fc2'))
VPP_SCHEDULE = dict(prune_layer=[1, 3, 6, 9],
                    keep_ratio=[0.7, 0.56, 0.448, 0.358])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sections', nargs='+',
                        choices=['kernels', 'art', 'onnx'],
                        default=['kernels', 'art', 'onnx'])
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--rounds', type=int, default=5,
                        help='timed rounds at batch 1')
    parser.add_argument('--rounds-large', type=int, default=3,
                        help='timed rounds at --batch')
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--sparsities', type=float, nargs='+',
                        default=[0.5, 0.7, 0.8, 0.9, 0.98, 0.995])
    parser.add_argument('--large-sparsities', type=float, nargs='+',
                        default=[0.9, 0.98, 0.995])
    parser.add_argument('--kernel-sparsities', type=float, nargs='+',
                        default=[0.9, 0.98, 0.995])
    parser.add_argument('--vpp-shape', type=int, nargs=2, default=[368, 640])
    parser.add_argument('--cls-batch', type=int, default=1,
                        help='batch of the classifier rows of onnx')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out-dir', default='work_dirs/benchmark_deploy')
    return parser.parse_args(argv)


def _median_ms(times):
    return 1e3 * statistics.median(times)


def _ratio_interval(base, other):
    """Median of the per-round ratios base/other and their min-max."""
    ratios = sorted(b / o for b, o in zip(base, other))
    return statistics.median(ratios), ratios[0], ratios[-1]


# ------------------------------------------------------------- kernels
def bench_kernels(args) -> list:
    gen = torch.Generator().manual_seed(args.seed)
    rows = []
    for tokens, rounds in ((197, args.rounds),
                           (197 * args.batch, args.rounds_large)):
        for fan_in, fan_out, name in VIT_LINEARS:
            x = torch.randn(tokens, fan_in, generator=gen)
            for sparsity in args.kernel_sparsities:
                w = torch.randn(fan_out, fan_in, generator=gen)
                w[torch.rand(w.shape, generator=gen) < sparsity] = 0
                b = torch.randn(fan_out, generator=gen)
                fns = {'dense': lambda w=w, b=b: F.linear(x, w, b)}
                ref = F.linear(x, w, b)
                diffs = {}
                for kernel in KERNELS:
                    layer = SparseLinear(w, b, kernel)
                    fns[kernel] = lambda m=layer: m(x)
                    diffs[kernel] = float((layer(x) - ref).abs().max())
                with torch.no_grad():
                    times = time_interleaved(fns, rounds)
                row = dict(layer=f'{name} {fan_in}x{fan_out}', tokens=tokens,
                           sparsity=sparsity,
                           dense_ms=_median_ms(times['dense']))
                for kernel in KERNELS:
                    row[f'{kernel}_ms'] = _median_ms(times[kernel])
                    row[f'{kernel}_speedup'] = row['dense_ms'] / \
                        row[f'{kernel}_ms']
                row['max_abs_diff'] = max(diffs.values())
                row['times'] = times
                rows.append(row)
                print(format_table([row], _kernel_cols())[-1:], flush=True)
    return rows


def _kernel_cols():
    cols = ['layer', 'tokens', 'sparsity', 'dense_ms']
    for kernel in KERNELS:
        cols += [f'{kernel}_ms', f'{kernel}_speedup']
    return cols + ['max_abs_diff']


# ----------------------------------------------------------------- art
def build_art_model(name: str):
    """DeiT-S (mmpretrain) or ResNet-32-w2 classifier, random weights."""
    from mmengine.registry import init_default_scope

    import mmsparse  # noqa: F401
    from mmsparse.registry import MODELS
    init_default_scope('mmpretrain')
    if name == 'vit-s':
        cfg = dict(type='ImageClassifier',
                   backbone=dict(type='VisionTransformer', arch='deit-small',
                                 img_size=224, patch_size=16),
                   neck=None,
                   head=dict(type='VisionTransformerClsHead',
                             num_classes=1000, in_channels=384))
        shape = (3, 224, 224)
    else:
        cfg = dict(type='ImageClassifier',
                   backbone=dict(type='CifarResNet', depth=32,
                                 widths=(32, 64, 128)),
                   neck=dict(type='GlobalAveragePooling'),
                   head=dict(type='LinearClsHead', num_classes=10,
                             in_channels=128))
        shape = (3, 32, 32)
    model = MODELS.build(cfg)  # random weights (module defaults)
    return model.eval(), shape


@torch.no_grad()
def mask_globally(model, sparsity: float, linear_only: bool,
                  seed: int = 0) -> float:
    """Zero the smallest weights (one global threshold); real sparsity.

    The prunable weights are first drawn from one normal distribution
    (std 0.02), so that every layer ends up about equally sparse (the
    initialisations differ in scale per layer type: with them one global
    threshold prunes a ViT's attention completely and its MLP to ~97 %).
    """
    from mmsparse.art import (DEFAULT_EXCLUDE, global_magnitude_masks,
                              prunable_weights)
    weights = prunable_weights(model, DEFAULT_EXCLUDE)
    if linear_only:
        linear = {n for n, m in model.named_modules()
                  if isinstance(m, torch.nn.Linear)}
        weights = type(weights)((k, v) for k, v in weights.items()
                                if k.rsplit('.', 1)[0] in linear)
    gen = torch.Generator().manual_seed(seed)
    for w in weights.values():
        w.copy_(0.02 * torch.randn(w.shape, generator=gen))
    masks = global_magnitude_masks(weights, sparsity)
    zeros = total = 0
    for k, w in weights.items():
        w.mul_(masks[k])
        zeros += int((w == 0).sum())
        total += w.numel()
    return zeros / total


@torch.no_grad()
def _max_diff(dense, sparse, x) -> float:
    """Largest difference of the logits and of the backbone features."""
    outs = []
    for model in (dense, sparse):
        feats = model.extract_feat(x)
        feats = list(feats) if isinstance(feats, (tuple, list)) else [feats]
        outs.append(feats + [model(x, mode='tensor')])
    return max(float((a - b).abs().max()) for a, b in zip(*outs))


def _break_even(points):
    """Smallest sparsity where the speed-up crosses 1 (interpolated)."""
    points = sorted(points)
    if points and points[0][1] >= 1:
        return f'<= {points[0][0]:g}'
    for (s0, r0), (s1, r1) in zip(points, points[1:]):
        if r0 < 1 <= r1:
            return s0 + (1 - r0) * (s1 - s0) / (r1 - r0)
    return f'> {points[-1][0]:g}' if points else None


def bench_art(args) -> list:
    rows = []
    gen = torch.Generator().manual_seed(args.seed)
    for name in ('vit-s', 'resnet32-w2'):
        torch.manual_seed(args.seed)
        base, shape = build_art_model(name)
        for batch, sparsities, rounds in (
                (1, args.sparsities, args.rounds),
                (args.batch, args.large_sparsities, args.rounds_large)):
            x = torch.randn(batch, *shape, generator=gen)
            fns, info = {}, {}
            for s in sparsities:
                dense = copy.deepcopy(base)
                real = mask_globally(dense, s, linear_only=name == 'vit-s')
                sparse = copy.deepcopy(dense)
                swapped = sparsify_model(sparse, min_sparsity=0.25,
                                         kernel='csr',
                                         layers=('linear', 'conv'))
                diff = _max_diff(dense, sparse, x[:min(batch, 4)])
                if not fns:
                    fns['dense'] = lambda m=dense: m(x, mode='tensor')
                fns[f'sparse {s:g}'] = lambda m=sparse: m(x, mode='tensor')
                info[s] = dict(real=real, diff=diff, layers=len(swapped))
            with torch.no_grad():
                times = time_interleaved(fns, rounds)
            for s in sparsities:
                key = f'sparse {s:g}'
                med, lo, hi = _ratio_interval(times['dense'], times[key])
                rows.append(dict(
                    model=name, batch=batch, sparsity=s,
                    real_sparsity=info[s]['real'],
                    layers=info[s]['layers'],
                    dense_ms=_median_ms(times['dense']),
                    sparse_ms=_median_ms(times[key]),
                    speedup=_median_ms(times['dense']) / _median_ms(
                        times[key]),
                    round_ratio_range=f'[{lo:.2f}, {hi:.2f}]',
                    max_abs_diff=info[s]['diff'],
                    times=dict(dense=times['dense'], sparse=times[key])))
                print(format_table([rows[-1]], _art_cols())[-1:], flush=True)
    return rows


def _art_cols():
    return ['model', 'batch', 'sparsity', 'real_sparsity', 'layers',
            'dense_ms', 'sparse_ms', 'speedup', 'round_ratio_range',
            'max_abs_diff']


def art_break_even(rows) -> dict:
    out = {}
    for model in sorted({r['model'] for r in rows}):
        for batch in sorted({r['batch'] for r in rows if r['model'] ==
                             model}):
            pts = [(r['sparsity'], r['speedup']) for r in rows
                   if r['model'] == model and r['batch'] == batch]
            out[f'{model} batch {batch}'] = _break_even(pts)
    return out


# ---------------------------------------------------------------- onnx
def _ort_session(path, threads):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(path, opts,
                                providers=['CPUExecutionProvider'])


def _onnx_models(args, tmp):
    """(pair, name, eager fn, onnx file, inputs dict, flops, diff) rows."""
    from mmengine.registry import init_default_scope

    import mmsparse  # noqa: F401
    from mmsparse.deploy import (ClassifierLogits, VPPFirstFrame,
                                 VPPStreamStep, export_onnx, onnx_max_abs_diff)
    from mmsparse.p3b import untrained_pruner
    from mmsparse.registry import MODELS
    init_default_scope('mmpretrain')
    gen = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    out = []
    # P3B: DeiT-S classifier, dense and slim at keep 0.5
    cfg = dict(type='ImageClassifier',
               backbone=dict(type='VisionTransformer', arch='deit-small',
                             img_size=224, patch_size=16),
               neck=None,
               head=dict(type='VisionTransformerClsHead', num_classes=1000,
                         in_channels=384))
    dense = MODELS.build(copy.deepcopy(cfg)).eval()
    pruner = untrained_pruner(dense, 0.5, 'random', seed=args.seed,
                              width_multiple=8)
    slim_cfg = copy.deepcopy(cfg)
    slim_cfg['backbone'].update(type='SlimVisionTransformer',
                                slim_arch=pruner.slim_arch())
    slim = MODELS.build(slim_cfg)
    slim.load_state_dict(pruner.slim_state_dict(dense), strict=True)
    pruner.remove()
    slim.eval()
    x = torch.randn(args.cls_batch, 3, 224, 224, generator=gen)
    for name, model in (('dense', dense), ('P3B-slim keep 0.5', slim)):
        module = ClassifierLogits(model).eval()
        path = osp.join(tmp, f'cls_{len(out)}.onnx')
        export_onnx(module, (x, ), path, ['image'], ['logits'])
        diff, _ = onnx_max_abs_diff(path, module, (x, ), ['image'],
                                    args.threads)
        flops = count_flops(module, x[:1])['flops']
        out.append((f'DeiT-S classifier, batch {args.cls_batch}', name,
                    lambda m=module: m(x), path, dict(image=x), flops, diff,
                    osp.getsize(path)))
    # VPP: dense ViTPyramid (ViT-S) and VPPBackbone at the paper's schedule
    H, W = args.vpp_shape
    # the backbone of configs/mask2former_vit-s_ytvis21.py (pyramid levels
    # without ViTDet's 256-channel projections)
    backbone = dict(type='ViTPyramid', arch='small', img_size=224,
                    drop_path_rate=0.0, out_channels=None)
    dense_bb = MODELS.build(copy.deepcopy(backbone)).eval()
    vpp = MODELS.build(dict(type='VPPBackbone', backbone=copy.deepcopy(
        backbone), **VPP_SCHEDULE)).eval()
    vpp.backbone.load_state_dict(dense_bb.state_dict())
    frames = torch.randn(2, 1, 3, H, W, generator=gen)
    first, step = VPPFirstFrame(vpp).eval(), VPPStreamStep(vpp).eval()
    with torch.no_grad():
        prior = first(frames[0])[-3:]
    path = osp.join(tmp, 'vit_pyramid.onnx')
    export_onnx(dense_bb, (frames[1], ), path, ['frame'])
    diff, _ = onnx_max_abs_diff(path, dense_bb, (frames[1], ), ['frame'],
                                args.threads)
    flops = count_flops(dense_bb, frames[1])['flops']
    out.append(('ViT-S backbone (VPP)', 'dense',
                lambda: dense_bb(frames[1]), path, dict(frame=frames[1]),
                flops, diff, osp.getsize(path)))
    names = ['frame', 'prior_key', 'prior_value', 'prior_valid']
    args_step = (frames[1], *prior)
    path = osp.join(tmp, 'vpp_step.onnx')
    export_onnx(step, args_step, path, names, allow=('VPPBackbone', ))
    diff, _ = onnx_max_abs_diff(path, step, args_step, names, args.threads)
    flops = count_flops(step, frames[1],
                        fn=lambda f: step(f, *prior))['flops']
    out.append(('ViT-S backbone (VPP)', 'VPP paper schedule (pruned frame)',
                lambda: step(*args_step), path,
                dict(zip(names, args_step)), flops, diff,
                osp.getsize(path)))
    return out


def bench_onnx(args) -> list:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        models = _onnx_models(args, tmp)
        fns = {}
        for pair, name, eager, path, inputs, *_ in models:
            session = _ort_session(path, args.threads)
            feeds = {k: v.numpy() for k, v in inputs.items()}
            fns[(pair, name, 'eager')] = eager
            fns[(pair, name, 'onnxruntime')] = \
                lambda s=session, f=feeds: s.run(None, f)
        with torch.no_grad():
            times = time_interleaved(fns, args.rounds)
    base = {}
    for pair, name, _, _, _, flops, diff, size in models:
        base.setdefault(pair, (name, flops))
        for runtime in ('eager', 'onnxruntime'):
            t = times[(pair, name, runtime)]
            ref = times[(pair, base[pair][0], runtime)]
            med, lo, hi = _ratio_interval(ref, t)
            speedup = _median_ms(ref) / _median_ms(t)
            flops_ratio = base[pair][1] / flops
            rows.append(dict(
                model=pair, variant=name, runtime=runtime,
                GFLOPs=flops / 1e9, flops_ratio=flops_ratio,
                ms=_median_ms(t), speedup=speedup,
                round_ratio_range=f'[{lo:.2f}, {hi:.2f}]',
                realised=speedup / flops_ratio,
                onnx_max_abs_diff=diff, onnx_MiB=size / 2**20,
                times=t))
    for pair, name, *_ in models:
        e = times[(pair, name, 'eager')]
        o = times[(pair, name, 'onnxruntime')]
        for row in rows:
            if row['model'] == pair and row['variant'] == name:
                row['ort_vs_eager'] = _median_ms(e) / _median_ms(o)
    return rows


def _onnx_cols():
    return ['model', 'variant', 'runtime', 'GFLOPs', 'flops_ratio', 'ms',
            'speedup', 'round_ratio_range', 'realised', 'ort_vs_eager',
            'onnx_max_abs_diff', 'onnx_MiB']


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    env = dict(threads=torch.get_num_threads(), rounds=args.rounds,
               rounds_large=args.rounds_large, batch=args.batch,
               cpu=platform.processor() or platform.machine(),
               torch=torch.__version__, loadavg=os.getloadavg())
    try:
        import onnxruntime
        env['onnxruntime'] = onnxruntime.__version__
    except ImportError:
        pass
    result, md = dict(env=env), []
    if 'kernels' in args.sections:
        rows = bench_kernels(args)
        result['kernels'] = rows
        md.append('## Sparse kernels, one ViT-S linear layer\n\n' +
                  format_table(rows, _kernel_cols()))
    if 'art' in args.sections:
        rows = bench_art(args)
        result['art'] = rows
        result['art_break_even'] = art_break_even(rows)
        md.append('## ART: whole model, masked dense vs sparse kernels '
                  '(CSR)\n\n' + format_table(rows, _art_cols()) +
                  '\n\nbreak-even sparsity: ' +
                  str(result['art_break_even']))
    if 'onnx' in args.sections:
        rows = bench_onnx(args)
        result['onnx'] = rows
        md.append('## onnxruntime vs PyTorch eager, dense vs pruned '
                  '(classifier batch --cls-batch, VPP streaming batch 1)'
                  '\n\n' + format_table(rows, _onnx_cols()))
    env['loadavg_end'] = os.getloadavg()
    text = '\n\n'.join(md) + f'\n\n{env}\n'
    print(text)
    os.makedirs(args.out_dir, exist_ok=True)
    write_json(result, osp.join(args.out_dir, 'benchmark_deploy.json'))
    with open(osp.join(args.out_dir, 'benchmark_deploy.md'), 'w') as f:
        f.write(text)
    return result


if __name__ == '__main__':
    main()
