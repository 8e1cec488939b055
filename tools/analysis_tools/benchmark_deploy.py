"""Deploy benchmark: sparse kernels for ART, onnxruntime for P3B / VPP.

    python tools/analysis_tools/benchmark_deploy.py
        [--sections kernels art onnx] [--threads 2] [--rounds 5]
        [--rounds-large 3] [--batch 64]
        [--sparsities 0.5 0.7 0.8 0.9 0.98 0.995]
        [--large-sparsities 0.9 0.98 0.995] [--vpp-shape 368 640]
        [--kernels csr coo scipy csr_keep_layout csr_contiguous_rows]
        [--art-models vit-s resnet32-w2] [--art-kernels csr]
        [--profile [--profile-rounds N] [--profile-target 3]]
        [--ort-profile] [--slim-folds out in both]
        [--out-dir work_dirs/benchmark_deploy]

Three sections, each a table (markdown on stdout and in
``OUT_DIR/benchmark_deploy.md``; every run in ``benchmark_deploy.json``):

* ``kernels``: one ViT-S linear layer (in x out: 384x1152 qkv, 384x384
  proj, 384x1536 fc1, 1536x384 fc2) on 197 tokens (batch 1) and
  ``197 * batch`` tokens, weights at 90 / 98 / 99.5 % random sparsity:
  the dense ``F.linear`` against each sparse kernel of ``--kernels``
  (default :data:`mmsparse.utils.sparse_layers.KERNELS`; the layer's own
  forward on an input in rows, returning the kernel's layout: here
  ``csr_contiguous_rows`` runs as ``csr``, it differs only in layers that
  return contiguous rows, such as a model's ``qkv``).
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
  ``--art-models`` picks the models, an empty ``--large-sparsities`` skips
  the ``--batch`` rows; ``--art-kernels`` times the sparse model once per
  kernel in the same rounds (a ``kernel`` column then tells the rows apart).
  ``--profile`` adds a table (and fields of the same rows in the json):
  ``--profile-rounds`` more interleaved rounds of the same models with a
  :class:`~mmsparse.utils.benchmark.ModuleTimer` on the prunable layers
  (the layers swapped in any sparse model of the group, at the same names
  in the dense model), each forward split into the time inside them and
  the rest (attention products, softmax, norms, activations, patch
  embedding, copies between layers, Python). Of the round whose total is
  the median (the lower one for an even count): ``*_prof_ms`` (total under
  the hooks; their own cost falls in the rest), ``*_prunable_ms``,
  ``*_rest_ms``; ``prunable_speedup`` (dense / sparse prunable time),
  ``amdahl_bound`` = dense total / dense rest (the whole-model speed-up
  with infinitely fast prunable layers) and ``need_for_3x`` (for
  ``--profile-target 3``): the speed-up over the dense prunable layers
  that would give the target with the sparse model's own rest
  (``unreachable`` when the rest alone exceeds dense total / target).
* ``onnx``: PyTorch eager against onnxruntime (CPU, fp32, the same
  threads), dense against pruned: a DeiT-S classifier (``--cls-batch``) and its
  P3B-slim version at keep 0.5 (uniform block budget, random scores,
  widths rounded to ``--slim-width-multiple``, 8 as ``P3BHook``); the dense ``ViTPyramid``
  (ViT-S) backbone and its ``VPPBackbone`` at the paper's ViT-S schedule
  (keep 0.7 / 0.56 / 0.448 / 0.358 from blocks 1 / 3 / 6 / 9; a pruned
  frame in steady state, prior from the frame before). FLOPs (fvcore
  convention) give the ideal ratio; ``speed-up / FLOPs ratio`` is how much
  of it the runtime realises. ``--slim-folds`` adds P3B-slim rows exported
  with the slim blocks' kept indices folded into their weights
  (:func:`mmsparse.deploy.fold_slim_indices`; ``both`` = ``in`` + ``out``);
  their FLOPs are the slim model's (the fold adds multiply-adds by zero),
  their max abs diff is against the unfolded slim model.
  ``--ort-profile`` adds, per model, tables from onnxruntime's own profiler
  (:mod:`mmsparse.utils.ort_profile`; ``--profile-rounds`` more
  interleaved rounds of profiling sessions, after the timed ones; the
  traces are deleted): per op type of the graph onnxruntime runs (after its
  fusions) the node count and ms per image of the dense and each pruned
  graph, their ratio, the op type's share of the pruned graph's time and
  the realised fraction if the pruned graph spent on it no more than the
  dense time times its matrix products' time ratio; per block the ms of
  both; in the json also the slowest nodes and the exported graphs' op
  counts (before onnxruntime's fusions).

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
import time
from typing import Callable, Dict, List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmsparse.utils.benchmark import (ModuleTimer, count_flops, format_table,
                                      time_interleaved, write_json)
from mmsparse.utils.sparse_layers import KERNELS, SparseLinear, sparsify_model

VIT_LINEARS = ((384, 1152, 'qkv'), (384, 384, 'proj'), (384, 1536, 'fc1'),
               (1536, 384, 'fc2'))
VPP_SCHEDULE = dict(prune_layer=[1, 3, 6, 9],
                    keep_ratio=[0.7, 0.56, 0.448, 0.358])
ART_MODELS = ('vit-s', 'resnet32-w2')
SLIM_FOLDS = {'out': ('out', ), 'in': ('in', ), 'both': ('in', 'out')}


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
    parser.add_argument('--large-sparsities', type=float, nargs='*',
                        default=[0.9, 0.98, 0.995],
                        help='art sparsities at --batch (none: no such rows)')
    parser.add_argument('--kernel-sparsities', type=float, nargs='+',
                        default=[0.9, 0.98, 0.995])
    parser.add_argument('--kernels', nargs='+', choices=KERNELS,
                        default=list(KERNELS),
                        help='sparse kernels of the kernels section')
    parser.add_argument('--art-models', nargs='+', choices=ART_MODELS,
                        default=list(ART_MODELS))
    parser.add_argument('--art-kernels', nargs='+', choices=KERNELS,
                        default=['csr'],
                        help='sparse kernels of the art section, timed in '
                        'the same rounds')
    parser.add_argument('--profile', action='store_true',
                        help='art: split each forward into the prunable '
                        'layers and the rest (extra rounds, ModuleTimer)')
    parser.add_argument('--profile-rounds', type=int, default=None,
                        help='profiled rounds of --profile and '
                        '--ort-profile (default: as many as timed)')
    parser.add_argument('--profile-target', type=float, default=3.0,
                        help='whole-model speed-up for need_for_<T>x')
    parser.add_argument('--ort-profile', action='store_true',
                        help='onnx: node time per op type and block from '
                        "onnxruntime's profiler (extra rounds)")
    parser.add_argument('--slim-folds', nargs='*', default=[],
                        choices=list(SLIM_FOLDS),
                        help='onnx: P3B-slim rows with the kept indices '
                        'folded into the weights')
    parser.add_argument('--slim-width-multiple', type=int, default=8,
                        help='onnx: P3B-slim kept widths rounded to a '
                        'multiple of it')
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
                for kernel in args.kernels:
                    layer = SparseLinear(w, b, kernel)
                    fns[kernel] = lambda m=layer: m(x)
                    diffs[kernel] = float((layer(x) - ref).abs().max())
                with torch.no_grad():
                    times = time_interleaved(fns, rounds)
                row = dict(layer=f'{name} {fan_in}x{fan_out}', tokens=tokens,
                           sparsity=sparsity,
                           dense_ms=_median_ms(times['dense']))
                for kernel in args.kernels:
                    row[f'{kernel}_ms'] = _median_ms(times[kernel])
                    row[f'{kernel}_speedup'] = row['dense_ms'] / \
                        row[f'{kernel}_ms']
                row['max_abs_diff'] = max(diffs.values())
                row['times'] = times
                rows.append(row)
                print(format_table([row], _kernel_cols(
                    args.kernels)).splitlines()[-1], flush=True)
    return rows


def _kernel_cols(kernels: Sequence[str] = KERNELS) -> List[str]:
    cols = ['layer', 'tokens', 'sparsity', 'dense_ms']
    for kernel in kernels:
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


ProfiledFn = Tuple[Callable[[], object], Sequence[nn.Module]]


def profile_split(fns: Dict[str, ProfiledFn],
                  rounds: int,
                  warmup: int = 1,
                  clock: Callable[[], float] = time.perf_counter
                  ) -> Dict[str, Dict[str, list]]:
    """Each forward split into its prunable layers and the rest.

    Interleaved as :func:`time_interleaved` (every round calls each entry
    once, in order), with a :class:`ModuleTimer` on the entry's modules;
    the hooks are removed at the end.

    Args:
        fns (dict): Name -> (callable running one forward, the modules
            whose calls are the prunable part).
        rounds (int): Recorded rounds.
        warmup (int): Unrecorded rounds first. Defaults to 1.
        clock (callable): The clock (seconds). Defaults to
            ``time.perf_counter``.

    Returns:
        dict: Name -> ``total`` and ``prunable`` (seconds, one per round)
        and ``calls`` (calls of the prunable modules, one per round).
    """
    if rounds < 1:
        raise ValueError(f'profile_split: rounds must be >= 1, got {rounds}')
    timers = {k: ModuleTimer({'prunable': list(mods)}, clock)
              for k, (_, mods) in fns.items()}
    out = {k: dict(total=[], prunable=[], calls=[]) for k in fns}
    try:
        for r in range(warmup + rounds):
            for k, (fn, _) in fns.items():
                timer = timers[k]
                timer.reset()
                start = clock()
                fn()
                total = clock() - start
                if r >= warmup:
                    out[k]['total'].append(total)
                    out[k]['prunable'].append(timer.seconds['prunable'])
                    out[k]['calls'].append(timer.calls['prunable'])
    finally:
        for timer in timers.values():
            timer.remove()
    return out


def split_ms(split: Dict[str, list]) -> Dict[str, float]:
    """``total`` / ``prunable`` / ``rest`` ms and ``calls`` of the round
    whose total is the median (the lower median for an even count), so
    that the parts add up to the total."""
    totals = split['total']
    i = sorted(range(len(totals)), key=totals.__getitem__)[
        (len(totals) - 1) // 2]
    total, prunable = 1e3 * totals[i], 1e3 * split['prunable'][i]
    return dict(total=total, prunable=prunable, rest=total - prunable,
                calls=split['calls'][i])


def profile_fields(dense: Dict[str, list], sparse: Dict[str, list],
                   target: float = 3.0) -> dict:
    """The profile columns of one row from two :func:`profile_split`
    entries (the dense model's and the sparse model's)."""
    d, s = split_ms(dense), split_ms(sparse)
    budget = d['total'] / target - s['rest']
    need = d['prunable'] / budget if budget > 0 else 'unreachable'
    return {
        'dense_prof_ms': d['total'], 'dense_prunable_ms': d['prunable'],
        'dense_rest_ms': d['rest'], 'sparse_prof_ms': s['total'],
        'sparse_prunable_ms': s['prunable'], 'sparse_rest_ms': s['rest'],
        'prunable_speedup': d['prunable'] / s['prunable'],
        'amdahl_bound': d['total'] / d['rest'],
        f'need_for_{target:g}x': need,
        'prunable_calls': dict(dense=d['calls'], sparse=s['calls'])}


def art_rows(name: str, base: nn.Module, x: torch.Tensor,
             sparsities: Sequence[float], rounds: int,
             linear_only: bool, kernels: Sequence[str] = ('csr', ),
             profile_rounds: int = 0, target: float = 3.0) -> List[dict]:
    """The art rows of one model at one batch (the rows of ``x``).

    Args:
        name (str): Model name for the rows.
        base (nn.Module): The dense classifier (copied, not changed).
        x (Tensor): The input batch.
        sparsities (Sequence[float]): Global magnitude sparsities.
        rounds (int): Timed interleaved rounds.
        linear_only (bool): Mask only ``nn.Linear`` weights.
        kernels (Sequence[str]): Sparse kernels; each sparse model is timed
            once per kernel. Defaults to ('csr', ).
        profile_rounds (int): Profiled rounds after the timed ones (0: no
            profile). Defaults to 0.
        target (float): Whole-model speed-up of ``need_for_<T>x``.
            Defaults to 3.0.

    Returns:
        list[dict]: One row per sparsity and kernel.
    """
    batch = x.shape[0]
    several = list(kernels) != ['csr']
    fns, info, models, prunable = {}, {}, {}, []
    for s in sparsities:
        dense = copy.deepcopy(base)
        real = mask_globally(dense, s, linear_only=linear_only)
        if not fns:
            fns['dense'] = lambda m=dense: m(x, mode='tensor')
            models['dense'] = dense
        for kernel in kernels:
            sparse = copy.deepcopy(dense)
            swapped = sparsify_model(sparse, min_sparsity=0.25,
                                     kernel=kernel, layers=('linear', 'conv'))
            diff = _max_diff(dense, sparse, x[:min(batch, 4)])
            key = f'sparse {s:g} {kernel}' if several else f'sparse {s:g}'
            fns[key] = lambda m=sparse: m(x, mode='tensor')
            models[key] = sparse
            prunable += [e['name'] for e in swapped
                         if e['name'] not in prunable]
            info[key] = dict(sparsity=s, kernel=kernel, real=real, diff=diff,
                             layers=len(swapped))
    with torch.no_grad():
        times = time_interleaved(fns, rounds)
        split = None
        if profile_rounds:
            split = profile_split(
                {k: (fn, _modules(models[k], prunable))
                 for k, fn in fns.items()}, profile_rounds)
    rows = []
    for key, inf in info.items():
        med, lo, hi = _ratio_interval(times['dense'], times[key])
        row = dict(model=name, batch=batch, sparsity=inf['sparsity'])
        if several:
            row['kernel'] = inf['kernel']
        row.update(
            real_sparsity=inf['real'], layers=inf['layers'],
            dense_ms=_median_ms(times['dense']),
            sparse_ms=_median_ms(times[key]),
            speedup=_median_ms(times['dense']) / _median_ms(times[key]),
            round_ratio_range=f'[{lo:.2f}, {hi:.2f}]',
            max_abs_diff=inf['diff'],
            times=dict(dense=times['dense'], sparse=times[key]))
        if split is not None:
            row.update(profile_fields(split['dense'], split[key], target))
            row['times'].update(dense_profile=split['dense'],
                                sparse_profile=split[key])
        rows.append(row)
        print(format_table([row], _art_cols(several)).splitlines()[-1],
              flush=True)
    return rows


def _modules(model: nn.Module, names: Sequence[str]) -> List[nn.Module]:
    found = dict(model.named_modules())
    return [found[n] for n in names]


def bench_art(args) -> list:
    rows = []
    gen = torch.Generator().manual_seed(args.seed)
    for name in args.art_models:
        torch.manual_seed(args.seed)
        base, shape = build_art_model(name)
        for batch, sparsities, rounds in (
                (1, args.sparsities, args.rounds),
                (args.batch, args.large_sparsities, args.rounds_large)):
            if not sparsities:
                continue
            x = torch.randn(batch, *shape, generator=gen)
            rows += art_rows(
                name, base, x, sparsities, rounds,
                linear_only=name == 'vit-s', kernels=args.art_kernels,
                profile_rounds=(args.profile_rounds or rounds)
                if args.profile else 0,
                target=args.profile_target)
    return rows


def _art_cols(kernel: bool = False) -> List[str]:
    return ['model', 'batch', 'sparsity'] + (['kernel'] if kernel else []) \
        + ['real_sparsity', 'layers', 'dense_ms', 'sparse_ms', 'speedup',
           'round_ratio_range', 'max_abs_diff']


def _profile_cols(kernel: bool = False, target: float = 3.0) -> List[str]:
    return ['model', 'batch', 'sparsity'] + (['kernel'] if kernel else []) \
        + ['dense_prof_ms', 'dense_prunable_ms', 'dense_rest_ms',
           'sparse_prof_ms', 'sparse_prunable_ms', 'sparse_rest_ms',
           'prunable_speedup', 'amdahl_bound', f'need_for_{target:g}x']


def art_break_even(rows) -> dict:
    out = {}
    for model in sorted({r['model'] for r in rows}):
        for batch in sorted({r['batch'] for r in rows if r['model'] ==
                             model}):
            for kernel in sorted({r.get('kernel') or '' for r in rows}):
                pts = [(r['sparsity'], r['speedup']) for r in rows
                       if r['model'] == model and r['batch'] == batch and
                       (r.get('kernel') or '') == kernel]
                if pts:
                    key = f'{model} batch {batch}' + \
                        (f' {kernel}' if kernel else '')
                    out[key] = _break_even(pts)
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
                                 VPPStreamStep, export_onnx, fold_slim_indices,
                                 onnx_max_abs_diff)
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
                              width_multiple=args.slim_width_multiple)
    slim_cfg = copy.deepcopy(cfg)
    slim_cfg['backbone'].update(type='SlimVisionTransformer',
                                slim_arch=pruner.slim_arch())
    slim = MODELS.build(slim_cfg)
    slim.load_state_dict(pruner.slim_state_dict(dense), strict=True)
    pruner.remove()
    slim.eval()
    x = torch.randn(args.cls_batch, 3, 224, 224, generator=gen)
    slim_module = ClassifierLogits(slim).eval()
    widths = ('' if args.slim_width_multiple == 8 else
              f', widths x{args.slim_width_multiple}')
    variants = [('dense', dense, None), (f'P3B-slim keep 0.5{widths}', slim,
                                         None)]
    variants += [(f'P3B-slim keep 0.5, folded {fold}',
                  fold_slim_indices(slim, SLIM_FOLDS[fold]).eval(), fold)
                 for fold in args.slim_folds]
    for name, model, fold in variants:
        module = ClassifierLogits(model).eval()
        path = osp.join(tmp, f'cls_{len(out)}.onnx')
        export_onnx(module, (x, ), path, ['image'], ['logits'])
        # a folded graph against the slim model; its useful FLOPs are the
        # slim model's (the rest are multiply-adds by zero)
        ref = module if fold is None else slim_module
        diff, _ = onnx_max_abs_diff(path, ref, (x, ), ['image'],
                                    args.threads)
        flops = count_flops(ref, x[:1])['flops']
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


def ort_profile_pairs(models: list, rounds: int, threads: int,
                      prefix: str) -> List[dict]:
    """onnxruntime's profile of every onnx row; each pruned row against
    the first row of its model (the dense one).

    Args:
        models (list): The rows of :func:`_onnx_models` (model, variant,
            eager fn, onnx file, inputs, FLOPs, ...).
        rounds (int): Profiled rounds (interleaved, after one warmup).
        threads (int): onnxruntime intra-op threads.
        prefix (str): Path prefix of the traces (deleted after reading).

    Returns:
        list[dict]: Per pruned row: ``model``, ``variant``, ``baseline``,
        ``flops_ratio``, ``rows`` and ``summary`` of
        :func:`~mmsparse.utils.ort_profile.compare_ops`, ``blocks``
        (:func:`~mmsparse.utils.ort_profile.compare_blocks`) and the two
        graphs' :func:`~mmsparse.utils.ort_profile.summarise_trace`
        (``dense``, ``pruned``, each with ``exported_ops``).
    """
    from mmsparse.utils.ort_profile import (compare_blocks, compare_ops,
                                            exported_op_counts, profile_onnx,
                                            summarise_trace)
    keys = [(m[0], m[1]) for m in models]
    traces = profile_onnx(
        {k: m[3] for k, m in zip(keys, models)},
        {k: {n: v.numpy() for n, v in m[4].items()}
         for k, m in zip(keys, models)}, rounds, threads, prefix)
    summary, base, out = {}, {}, []
    for k, m in zip(keys, models):
        batch = next(iter(m[4].values())).shape[0]
        summary[k] = summarise_trace(traces[k], batch=batch)
        summary[k]['exported_ops'] = exported_op_counts(m[3])
        os.remove(traces[k])
        if k[0] not in base:
            base[k[0]] = (k, m[5])
            continue
        ref, ref_flops = base[k[0]]
        ratio = ref_flops / m[5]
        out.append(dict(model=k[0], variant=k[1], baseline=ref[1],
                        flops_ratio=ratio,
                        **compare_ops(summary[ref], summary[k], ratio),
                        blocks=compare_blocks(summary[ref], summary[k]),
                        dense=summary[ref], pruned=summary[k]))
    return out


def _ort_profile_md(profiles: List[dict]) -> str:
    from mmsparse.utils.ort_profile import BLOCK_COLS, OP_COLS

    def g(v):
        return f'{v:.4g}' if isinstance(v, float) else str(v)

    parts = []
    for p in profiles:
        s = {k: g(v) for k, v in p['summary'].items()}
        parts.append(
            f"### onnxruntime profile: {p['model']}, {p['baseline']} vs "
            f"{p['variant']}\n\nms per image, medians over "
            f"{p['pruned']['rounds']} profiled rounds, part by part (the "
            f"parts add up only roughly): {g(p['dense']['total_ms'])} vs "
            f"{g(p['pruned']['total_ms'])}; FLOPs ratio "
            f"{g(p['flops_ratio'])}, profiled speed-up {s['speedup']} "
            f"(realised {s['realised']}); matrix products "
            f"{s['matmul_speedup']}x; realised if the rest shrank like them "
            f"{s['realised_if_rest_shrank_like_matmul']}, if it stayed as "
            f"dense {s['realised_if_rest_as_dense']}\n\n" +
            format_table(p['rows'], OP_COLS) + '\n\n' +
            format_table(p['blocks'], BLOCK_COLS))
    return '\n\n'.join(parts)


def bench_onnx(args) -> Tuple[list, list]:
    """The onnx rows and (``--ort-profile``) their profiles."""
    rows, profiles = [], []
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
        if args.ort_profile:
            profiles = ort_profile_pairs(
                models, args.profile_rounds or args.rounds, args.threads,
                osp.join(tmp, 'ort_trace_'))
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
    return rows, profiles


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
                  format_table(rows, _kernel_cols(args.kernels)))
    if 'art' in args.sections:
        rows = bench_art(args)
        result['art'] = rows
        result['art_break_even'] = art_break_even(rows)
        several = any('kernel' in r for r in rows)
        kernels = ', '.join(args.art_kernels) if several else 'CSR'
        md.append('## ART: whole model, masked dense vs sparse kernels '
                  f'({kernels})\n\n' + format_table(rows, _art_cols(several))
                  + '\n\nbreak-even sparsity: ' +
                  str(result['art_break_even']))
        if args.profile:
            md.append('### ART: time in the prunable layers and the rest '
                      '(--profile)\n\n' + format_table(
                          rows, _profile_cols(several, args.profile_target)))
    if 'onnx' in args.sections:
        rows, profiles = bench_onnx(args)
        result['onnx'] = rows
        md.append('## onnxruntime vs PyTorch eager, dense vs pruned '
                  '(classifier batch --cls-batch, VPP streaming batch 1)'
                  '\n\n' + format_table(rows, _onnx_cols()))
        if args.ort_profile:
            result['onnx_ort_profile'] = profiles
            md.append(_ort_profile_md(profiles))
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
