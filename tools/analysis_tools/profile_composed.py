"""Where the backbone time of benchmark_composed's rows goes: an op profile.

    python tools/analysis_tools/profile_composed.py
        [the row arguments of benchmark_composed.py: --vpp-config,
         --composed-config, --export | --slim-keep --slim-score, --vpp,
         --shape, --frames, --threads, --device cpu, --verbose]
        [--warmup 3] [--calls 10] [--top 15]
        [--profile-out work_dirs/benchmark/composed_profile.json]

The rows are built by ``benchmark_composed.build_rows`` (the same models,
frames and callables the benchmark times). For every row the steady-state
backbone frame (VPP rows: a pruned frame with the prior of the frame before)
runs ``--warmup`` times, then ``--calls`` times under ``torch.profiler``
(CPU activity, no shapes), then ``--calls`` times more with shapes and
FLOPs (``record_shapes``, ``with_flops``) for the FLOP counts only, so that
shape recording does not inflate the timed pass.

Reported per row and frame (milliseconds of self CPU time, i.e. the time of
the main thread inside each op minus its child ops; intra-op threads work
inside the op that starts them):

* the op total and its split into categories (:data:`CATEGORIES`): an op
  belongs to the category of its outermost categorised ancestor, so the
  children of ``scaled_dot_product_attention`` count as attention, the bias
  copy of ``addmm`` as GEMM and the ``copy_`` inside ``index_put_`` as
  gather/scatter; an op without such an ancestor goes by its own name
  (``copy/layout`` for copies, views and allocations outside any other op).
  The categories sum to the op total. ``outside ops`` is the frame's wall
  time under the profiler minus the op total: Python between the ops and
  the profiler's own cost per op (large for tiny models);
* the same split by region of the backbone (module forward hooks): patch
  embedding, ViT blocks, VPP selector (Map-SM + score heads), pyramid, and
  the rest (position embedding, top-k, token gather/scatter, final norm);
* GEMM throughput: GEMM FLOPs (profiler counts of mm/addmm/bmm/baddbmm, else
  counted from their shapes; 1 multiply-add = 2 FLOPs, the hardware
  convention, so twice the benchmark's "GFLOPs") over GEMM time, and the
  same for attention (FLOPs of the QK^T and AV products from the shapes);
  per GEMM shape (from the shapes pass) calls, time and GFLOP/s, to see
  whether half-width GEMMs run slower per FLOP;
* the ``--top`` ops (name and category) by self time.

Printed as markdown tables (rows x categories, rows x regions) and written
with everything to ``--profile-out`` (and the tables to the same name with
``.md``). A profile shows where the time goes, not the speed: the profiler
adds a few microseconds per op, and ``benchmark_composed.py`` stays the
timing.
"""
import argparse
import os.path as osp
import platform
import tempfile
from collections import defaultdict
from contextlib import contextmanager
from typing import Callable, Dict, List, Optional

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from mmsparse.utils.benchmark import format_table, write_json
from mmsparse.utils.composed_benchmark import (add_row_arguments, build_rows,
                                               check_row_arguments,
                                               slim_source)

#: Categories of ops by name (without ``aten::``), in table order.
CATEGORIES = {
    'gemm': {'mm', 'addmm', 'bmm', 'baddbmm', 'addbmm', 'matmul', 'linear',
             'einsum', '_addmm_activation', 'mv', 'addmv', 'dot',
             'tensordot', 'mkldnn_linear'},
    'attention': {'scaled_dot_product_attention',
                  '_scaled_dot_product_flash_attention_for_cpu',
                  '_scaled_dot_product_attention_math',
                  '_scaled_dot_product_flash_attention',
                  '_scaled_dot_product_efficient_attention',
                  '_scaled_dot_product_cudnn_attention',
                  '_fused_sdp_choice'},
    'conv': {'conv1d', 'conv2d', 'conv3d', 'conv_transpose1d',
             'conv_transpose2d', 'conv_transpose3d', 'convolution',
             '_convolution', 'mkldnn_convolution', 'slow_conv_transpose2d',
             'slow_conv_dilated2d', '_slow_conv2d_forward',
             'thnn_conv2d', '_nnpack_spatial_convolution', 'max_pool2d',
             'max_pool2d_with_indices', 'mkldnn_max_pool2d',
             'avg_pool2d', 'cudnn_convolution',
             'cudnn_convolution_transpose'},
    'gather/scatter': {'index_select', 'index', 'index_add', 'index_add_',
                       'index_put', 'index_put_', '_index_put_impl_',
                       'index_copy', 'index_copy_', 'scatter', 'scatter_',
                       'scatter_add', 'scatter_add_', 'scatter_reduce',
                       'gather', 'masked_select', 'masked_scatter',
                       'masked_scatter_', 'take', 'take_along_dim', 'cat',
                       'stack', 'nonzero', 'embedding'},
    'norm': {'layer_norm', 'native_layer_norm', 'group_norm',
             'native_group_norm', 'batch_norm', '_batch_norm_impl_index',
             'native_batch_norm', '_native_batch_norm_legit_no_training',
             'instance_norm', 'rms_norm'},
    'elementwise': {'add', 'add_', 'sub', 'sub_', 'rsub', 'mul', 'mul_',
                    'div', 'div_', 'gelu', 'gelu_', 'relu', 'relu_', 'silu',
                    'silu_', 'sigmoid', 'tanh', 'erf', 'exp', 'log', 'pow',
                    'sqrt', 'rsqrt', 'neg', 'abs', 'clamp', 'clamp_',
                    'clamp_min', 'where', 'masked_fill', 'masked_fill_',
                    'addcmul', 'addcdiv', 'lerp', 'maximum', 'minimum',
                    'softmax', '_softmax', 'log_softmax', '_log_softmax',
                    'mean', 'sum', 'var', 'std', 'amax', 'amin', 'max',
                    'min', 'norm', 'linalg_vector_norm', 'eq', 'ne', 'gt',
                    'lt', 'ge', 'le', 'logical_not', 'bitwise_not',
                    'hardtanh', 'leaky_relu', 'dropout'},
    'copy/layout': {'copy_', 'clone', 'contiguous', 'to', '_to_copy',
                    'permute', 'transpose', 't', 'view', 'reshape',
                    '_reshape_alias', '_unsafe_view', 'flatten',
                    'unflatten', 'expand', 'expand_as', 'as_strided',
                    'select', 'slice', 'unbind', 'split', 'split_with_sizes',
                    'chunk', 'narrow', 'squeeze', 'unsqueeze', 'empty',
                    'empty_like', 'empty_strided', 'zeros', 'zeros_like',
                    'ones', 'ones_like', 'new_empty', 'new_empty_strided',
                    'new_zeros', 'new_ones', 'full', 'fill_', 'zero_',
                    'resize_', 'detach', 'detach_', 'alias', 'lift_fresh',
                    'resolve_conj', 'resolve_neg', 'arange', 'item',
                    '_local_scalar_dense', 'numpy_T', 'movedim', 'repeat'},
}
#: Categories an ancestor passes to its children (all but copy/layout).
CLAIMING = [c for c in CATEGORIES if c != 'copy/layout']
CATEGORY_ORDER = list(CATEGORIES) + ['other']
#: GEMM kernels whose FLOPs are counted (the profiler's, or from shapes).
GEMM_KERNELS = {'mm', 'addmm', 'bmm', 'baddbmm'}
REGIONS = ['patch embed', 'ViT blocks', 'VPP selector', 'pyramid', 'rest']
FRAME = 'profile_composed::frame'
REGION_PREFIX = 'profile_composed::'


def op_category(name: str) -> str:
    """Category of an op by its name ('aten::addmm' -> 'gemm')."""
    short = name.split('::', 1)[-1]
    for category, names in CATEGORIES.items():
        if short in names:
            return category
    return 'other'


def _is_annotation(event) -> bool:
    return event.name.startswith(REGION_PREFIX) or getattr(
        event, 'is_user_annotation', False)


def event_category(event) -> str:
    """Category of a profiler event: its outermost ancestor's (itself
    included) among :data:`CLAIMING`, else its own name's."""
    claimed, node = None, event
    while node is not None:
        if not _is_annotation(node):
            category = op_category(node.name)
            if category in CLAIMING:
                claimed = category
        node = node.cpu_parent
    return claimed or op_category(event.name)


def event_region(event) -> str:
    """Innermost region annotation above an event ('rest' if none)."""
    node = event
    while node is not None:
        if node.name.startswith(REGION_PREFIX) and node.name != FRAME:
            return node.name[len(REGION_PREFIX):]
        node = node.cpu_parent
    return 'rest'


def _gemm_flops(event) -> int:
    """FLOPs (2 per multiply-add) of a GEMM kernel event."""
    if event.flops:
        return int(event.flops)
    shapes = [s for s in (event.input_shapes or []) if s]
    short = event.name.split('::', 1)[-1]
    if short in ('addmm', 'baddbmm') and len(shapes) >= 3:
        shapes = shapes[1:3]
    if len(shapes) < 2 or len(shapes[0]) < 2:
        return 0
    a, b = shapes[0], shapes[1]
    batch = 1
    for dim in a[:-2]:
        batch *= dim
    return 2 * batch * a[-2] * a[-1] * b[-1]


def _attention_flops(event) -> int:
    """FLOPs (2 per multiply-add) of QK^T and AV in an SDPA event."""
    shapes = event.input_shapes or []
    if len(shapes) < 3 or not all(len(s) >= 2 for s in shapes[:3]):
        return 0
    q, k, v = shapes[:3]
    batch = 1
    for dim in q[:-2]:
        batch *= dim
    return 2 * batch * q[-2] * k[-2] * (q[-1] + v[-1])


@contextmanager
def region_marks(backbone):
    """Mark the regions of a ``VPPBackbone`` (:data:`REGIONS`) with
    ``record_function`` ranges from module forward hooks."""
    vit, pruner = backbone.backbone, backbone.pruner
    modules = [('patch embed', vit.patch_embed.proj)] + [
        ('ViT blocks', block) for block in vit.blocks] + [
        ('VPP selector', m) for m in [pruner.mapping, *pruner.scorers]
        if m is not None] + [('pyramid', vit.pyramid)]
    handles, open_ranges = [], []

    def enter(region):
        def hook(module, args):
            rf = record_function(REGION_PREFIX + region)
            rf.__enter__()
            open_ranges.append(rf)
        return hook

    def leave(module, args, output):
        open_ranges.pop().__exit__(None, None, None)

    for region, module in modules:
        handles.append(module.register_forward_pre_hook(enter(region)))
        handles.append(module.register_forward_hook(leave))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _profiled(fn: Callable, calls: int, shapes: bool):
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU],
                                  record_shapes=shapes,
                                  with_flops=shapes) as prof:
        for _ in range(calls):
            with record_function(FRAME):
                fn()
    return prof.events()


def summarise(events, shape_events, calls: int, top: int = 15) -> dict:
    """Per-frame profile of one row from the timed pass (``events``) and
    the shapes pass (``shape_events``), each of ``calls`` frames."""
    us = 1e3 * calls  # profiler microseconds -> ms per frame
    cats = dict.fromkeys(CATEGORY_ORDER, 0.0)
    regions = {r: dict.fromkeys(CATEGORY_ORDER, 0.0) for r in REGIONS}
    ops = defaultdict(lambda: [0.0, 0])
    frame_ms = outside = 0.0
    for e in events:
        if _is_annotation(e):
            outside += e.self_cpu_time_total / us
            if e.name == FRAME:
                frame_ms += e.cpu_time_total / us
            continue
        cat = event_category(e)
        ms = e.self_cpu_time_total / us
        cats[cat] += ms
        regions[event_region(e)][cat] += ms
        ops[(e.name, cat)][0] += ms
        ops[(e.name, cat)][1] += 1
    total = sum(cats.values())
    gemm_flops = attn_flops = 0
    shapes = defaultdict(lambda: [0, 0.0, 0])  # calls, ms, flops
    for e in shape_events:
        if _is_annotation(e):
            continue
        short = e.name.split('::', 1)[-1]
        if short in GEMM_KERNELS and event_category(e) == 'gemm':
            flops = _gemm_flops(e)
            gemm_flops += flops
            key = (e.name, str(e.input_shapes))
            shapes[key][0] += 1
            shapes[key][1] += e.cpu_time_total / us
            shapes[key][2] += flops
        elif short == 'scaled_dot_product_attention':
            attn_flops += _attention_flops(e)

    def rate(flops, ms):
        return flops / calls / (ms * 1e6) if ms > 0 else None

    gemm_shapes = sorted(
        (dict(op=name, input_shapes=s, calls=n / calls, ms=ms,
              GFLOPs=f / calls / 1e9, GFLOP_per_s=rate(f, ms))
         for (name, s), (n, ms, f) in shapes.items()),
        key=lambda d: -d['ms'])
    top_ops = sorted(
        (dict(op=name, category=cat, ms=ms, calls=n / calls,
              share=ms / total if total else 0.0)
         for (name, cat), (ms, n) in ops.items()),
        key=lambda d: -d['ms'])[:top]
    return dict(
        calls=calls, frame_ms=frame_ms, op_self_ms=total,
        outside_ops_ms=outside,
        categories={c: dict(ms=ms, share=ms / total if total else 0.0)
                    for c, ms in cats.items()},
        regions={r: dict(ms=sum(c.values()),
                         share=sum(c.values()) / total if total else 0.0,
                         categories_ms=c)
                 for r, c in regions.items()},
        gemm=dict(GFLOPs=gemm_flops / calls / 1e9,
                  ms=cats['gemm'],
                  GFLOP_per_s=rate(gemm_flops, cats['gemm']),
                  shapes=gemm_shapes),
        attention=dict(GFLOPs=attn_flops / calls / 1e9,
                       ms=cats['attention'],
                       GFLOP_per_s=rate(attn_flops, cats['attention'])),
        top_ops=top_ops)


def profile_frame(fn: Callable, backbone, warmup: int = 3, calls: int = 10,
                  top: int = 15) -> dict:
    """Profile ``fn`` (one backbone frame of ``backbone``, a VPPBackbone):
    ``warmup`` plain calls, ``calls`` timed and ``calls`` shape calls."""
    with torch.no_grad():
        for _ in range(warmup):
            fn()
    with region_marks(backbone):
        events = _profiled(fn, calls, shapes=False)
        shape_events = _profiled(fn, calls, shapes=True)
    return summarise(events, shape_events, calls, top)


def _cell(part: dict) -> str:
    return f'{part["ms"]:.2f} ({100 * part["share"]:.0f} %)'


def _rate(value: Optional[float]) -> str:
    return '-' if value is None else f'{value:.1f}'


def tables(rows: List[dict]) -> Dict[str, str]:
    """Markdown tables of the profiled rows: categories, regions, top ops
    and GEMM shapes (the last two per row)."""
    flat = []
    for row in rows:
        p = row['profile']
        cells = dict(model=row['model'], frame=f'{p["frame_ms"]:.2f}',
                     ops=f'{p["op_self_ms"]:.2f}',
                     outside=f'{p["outside_ops_ms"]:.2f}',
                     gemm_rate=_rate(p['gemm']['GFLOP_per_s']),
                     attn_rate=_rate(p['attention']['GFLOP_per_s']))
        cells.update({c: _cell(v) for c, v in p['categories'].items()})
        cells.update({r: _cell(v) for r, v in p['regions'].items()})
        flat.append(cells)
    out = dict(categories=format_table(
        flat, ['model', 'frame', 'outside', 'ops'] + CATEGORY_ORDER +
        ['gemm_rate', 'attn_rate'],
        ['model', 'frame ms', 'outside ops', 'op self ms'] +
        [f'{c} ms (%)' for c in CATEGORY_ORDER] +
        ['GEMM GFLOP/s', 'attention GFLOP/s']))
    out['regions'] = format_table(
        flat, ['model', 'ops'] + REGIONS,
        ['model', 'op self ms'] + [f'{r} ms (%)' for r in REGIONS])
    for row in rows:
        p = row['profile']
        top = [dict(op=d['op'], category=d['category'], ms=f'{d["ms"]:.3f}',
                    share=f'{100 * d["share"]:.1f} %',
                    calls=f'{d["calls"]:g}') for d in p['top_ops']]
        out[f'top ops: {row["model"]}'] = format_table(
            top, ['op', 'category', 'ms', 'share', 'calls'],
            ['op', 'category', 'ms / frame', 'of op time', 'calls / frame'])
        shapes = [dict(op=d['op'], shapes=d['input_shapes'],
                       calls=f'{d["calls"]:g}', ms=f'{d["ms"]:.3f}',
                       gflops=f'{d["GFLOPs"]:.4f}',
                       rate=_rate(d['GFLOP_per_s']))
                  for d in p['gemm']['shapes'][:10]]
        out[f'GEMM shapes: {row["model"]}'] = format_table(
            shapes, ['op', 'shapes', 'calls', 'ms', 'gflops', 'rate'],
            ['op', 'input shapes', 'calls / frame', 'ms / frame (shapes '
             'pass)', 'GFLOP / frame', 'GFLOP/s'])
    return out


def main(argv: Optional[List[str]] = None) -> str:
    """Run the profile (``argv``: the command line, default ``sys.argv``);
    returns the path of the json."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_row_arguments(parser)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--calls', type=int, default=10,
                        help='profiled frames per row (and as many more '
                        'with shapes for the FLOP counts)')
    parser.add_argument('--top', type=int, default=15)
    parser.add_argument('--profile-out',
                        default='work_dirs/benchmark/composed_profile.json')
    args = parser.parse_args(argv)
    if args.calls < 1 or args.warmup < 0 or args.top < 1:
        parser.error('--calls and --top must be >= 1, --warmup >= 0')
    if torch.device(args.device).type != 'cpu':
        parser.error('--device: the profile is of the CPU (torch.profiler '
                     'CPU activity); got ' + args.device)
    schedules = check_row_arguments(parser, args)
    tmp = tempfile.TemporaryDirectory(prefix='p3b_export_')
    rows, calls, slim_info, models = build_rows(args, schedules, tmp.name)
    keep = ('model', 'schedule', 'frame_pkr', 'num_patches',
            'patches_per_block', 'vit_block_params_M', 'backbone_GFLOPs',
            'vit_GFLOPs')
    out_rows = []
    for row, fns, model in zip(rows, calls, models):
        print(f'profiling {row["model"]} ({args.calls} frames) ...',
              flush=True)
        out_rows.append({k: row[k] for k in keep} | dict(
            profile=profile_frame(fns['backbone'], model.backbone,
                                  args.warmup, args.calls, args.top)))
    tmp.cleanup()
    text = tables(out_rows)
    h, w = args.shape
    note = (f'per backbone frame at {h}x{w}, CPU, {torch.get_num_threads()} '
            'threads, batch 1 (VPP rows: a pruned frame, prior from the '
            f'frame before); {args.calls} profiled frames after '
            f'{args.warmup} warm-up calls, self CPU time of the ops in ms '
            'per frame (share of the op total); outside ops = frame wall '
            'time under the profiler minus the op total (Python, profiler '
            'cost). GFLOP/s: 2 FLOPs per multiply-add. P3B-slim: '
            f'{slim_source(args, slim_info)}.')
    md = '\n\n'.join(f'### {name}\n\n{table}' for name, table in text.items())
    print(md)
    print(note)
    out = write_json(
        dict(vpp_config=args.vpp_config,
             composed_config=args.composed_config, slim=slim_info,
             rows=out_rows, tables=text, note=note, shape=[h, w],
             warmup=args.warmup, calls=args.calls, top=args.top,
             categories={c: sorted(n) for c, n in CATEGORIES.items()},
             torch=torch.__version__, threads=torch.get_num_threads(),
             cpu=platform.processor() or platform.machine()),
        args.profile_out)
    md_path = osp.splitext(out)[0] + '.md'
    with open(md_path, 'w') as f:
        f.write(f'{note}\n\n{md}\n')
    print(f'wrote {out} and {md_path}')
    return out


if __name__ == '__main__':
    main()
