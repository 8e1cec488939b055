"""Dense vs VPP side by side: FLOPs and wall-clock per frame at keep ratios.

    python tools/analysis_tools/benchmark_vpp.py CONFIG
        [--keep-ratios 1.0 0.7 0.55 0.4] [--shape 368 640] [--frames 4]
        [--repeat 5] [--threads N] [--out work_dirs/benchmark/vpp.json]
        [--checkpoint CKPT] [--cfg-options k=v ...]

CONFIG is a VPP config (``model.backbone.type='VPPBackbone'``); each keep
ratio is built with ``model.backbone.keep_ratio=r`` (1.0 is the wrapped dense
backbone, bit-exact). Measured in one process, the timings interleaved (one
run of every row per round, median over rounds, every run in the JSON) so
that load changes on a shared machine hit all rows alike:

* backbone, one *pruned* frame in steady state (the prior comes from the
  frame before, as in a video): FLOPs and wall-clock, also of the ViT
  part alone (embedding, blocks, norm; timed with the pyramid left out) and
  of the feature pyramid, which runs on the full grid whatever is pruned;
* whole model per frame: the pruned backbone frame plus the head
  (``track_head.predict``, post-processing included) on a ``--frames`` clip
  divided by the number of frames (the head's cost does not depend on
  pruning).

FLOPs use ``mmengine.analysis`` (fvcore convention, 1 multiply-add = 1 FLOP)
with the attention switched to its explicit matmul path while counting
(fused SDPA has no counter); the timed runs use the fused path. The ideal
speed-up (dense FLOPs / FLOPs) is printed beside the measured one.
"""
import argparse
import contextlib
import importlib.util
import os.path as osp
import platform
import statistics
import time

import torch
from mmengine.config import DictAction

from mmsparse.utils.benchmark import count_flops, format_table, write_json


def _dense_tool():
    """The dense benchmark tool (build, make_track_sample) next to this."""
    path = osp.join(osp.dirname(osp.abspath(__file__)), 'benchmark.py')
    spec = importlib.util.spec_from_file_location('_mmsparse_benchmark', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def explicit_attention(model):
    """Use the non-fused attention path (countable matmuls) inside."""
    attns = [m for m in model.modules()
             if hasattr(m, 'fused') and hasattr(m, 'keep_attn')]
    old = [m.fused for m in attns]
    for m in attns:
        m.fused = False
    try:
        yield
    finally:
        for m, f in zip(attns, old):
            m.fused = f


class _NoPyramid(torch.nn.Module):
    """Stands in for the pyramid to time the ViT part alone."""

    def forward(self, x):
        return [x]


def measure_row(model, keep, frames, sample_fn, h, w):
    """FLOPs, PKR and the timed callables of one keep ratio."""
    model.eval()
    bb = model.backbone
    if not hasattr(bb, 'forward_stream'):
        raise TypeError(f'{type(bb).__name__} is not a VPPBackbone; give a '
                        'VPP config (model.backbone.type=VPPBackbone)')
    T = frames.shape[0]
    with torch.no_grad():
        _, prior = bb.forward_stream(frames[:1])
        feat = bb.backbone.tokens_to_featmap(*bb.backbone.embed(frames[1:2]))
        bb.forward_stream(frames[1:2], prior)
        frame_pkr = bb.last_stats[-1].pkr if bb.last_stats else 1.0
        feats = tuple(bb(frames))
        video_pkr = (sum(s.pkr for s in bb.last_stats) / T
                     if bb.last_stats else 1.0)

    def frame_fn(x):
        return bb.forward_stream(x, prior)[0]

    def head_fn(x):
        return model.track_head(x, sample_fn(T, h, w))

    with explicit_attention(model):
        bb_flops = count_flops(bb, frames[1:2], fn=frame_fn)
        pyr_flops = count_flops(bb.backbone.pyramid, feat)
        head_flops = count_flops(model.track_head, feats, fn=head_fn)
    head_per_frame = head_flops['flops'] / 1e9 / T
    row = dict(
        keep_ratio=keep,
        frame_pkr=frame_pkr,
        video_pkr=video_pkr,
        backbone_GFLOPs=bb_flops['flops'] / 1e9,
        vit_GFLOPs=(bb_flops['flops'] - pyr_flops['flops']) / 1e9,
        head_GFLOPs_per_frame=head_per_frame,
        model_GFLOPs=bb_flops['flops'] / 1e9 + head_per_frame,
        uncounted_ops=sorted(set(bb_flops['uncounted'])
                             | set(head_flops['uncounted'])))

    def vit_only():
        pyramid = bb.backbone.pyramid
        bb.backbone.pyramid = _NoPyramid()
        try:
            return frame_fn(frames[1:2])
        finally:
            bb.backbone.pyramid = pyramid

    calls = dict(
        backbone=lambda: frame_fn(frames[1:2]),
        vit=vit_only,
        pyramid=lambda: bb.backbone.pyramid(feat),
        head=lambda: model.track_head.predict(feats, sample_fn(T, h, w)))
    return row, calls


def interleaved_times(calls_per_row, repeat, model_repeat):
    """Median (and min) seconds of every call over rounds (one run of every
    row per round); the expensive ``head`` call only in the first
    ``model_repeat`` rounds."""
    runs = [{k: [] for k in calls} for calls in calls_per_row]
    with torch.no_grad():
        for calls in calls_per_row:  # warm-up
            for fn in calls.values():
                fn()
        for r in range(repeat):
            for calls, out in zip(calls_per_row, runs):
                for key, fn in calls.items():
                    if key == 'head' and r >= model_repeat:
                        continue
                    start = time.perf_counter()
                    fn()
                    out[key].append(time.perf_counter() - start)
    return [{k: statistics.median(v) for k, v in r.items()}
            | {f'{k}_min': min(v) for k, v in r.items()}
            | {'runs': r} for r in runs]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='a VPP config')
    parser.add_argument('--keep-ratios', type=float, nargs='+',
                        default=[1.0, 0.7, 0.55, 0.4])
    parser.add_argument('--checkpoint', default=None)
    parser.add_argument('--shape', type=int, nargs=2, default=[368, 640],
                        metavar=('H', 'W'))
    parser.add_argument('--frames', type=int, default=4,
                        help='clip length for the head numbers')
    parser.add_argument('--repeat', type=int, default=5,
                        help='timed rounds of the backbone parts')
    parser.add_argument('--model-repeat', type=int, default=None,
                        help='timed rounds of the head (default: --repeat)')
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--out', default='work_dirs/benchmark/vpp.json')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    if args.frames < 2 or args.repeat < 1:
        parser.error('--frames must be >= 2 and --repeat >= 1')
    if any(not 0 < r <= 1 for r in args.keep_ratios):
        parser.error('--keep-ratios must be in (0, 1]')
    h, w = args.shape
    if h % 16 or w % 16:
        parser.error(f'--shape {h} {w}: both must be multiples of the patch '
                     'size 16 (368x640 = a 23x40 grid; real 640x360 frames '
                     'are padded to 384x640 by the data preprocessor)')
    if args.threads:
        torch.set_num_threads(args.threads)
    tool = _dense_tool()

    torch.manual_seed(0)
    frames = torch.randn(args.frames, 3, h, w)
    rows, calls = [], []
    for keep in args.keep_ratios:
        opts = dict(args.cfg_options or {})
        opts['model.backbone.keep_ratio'] = keep
        opts['model.backbone.backbone.init_cfg'] = None  # no downloads
        model = tool.build(args.config, args.checkpoint, opts)
        print(f'keep {keep}: counting FLOPs ...', flush=True)
        row, fns = measure_row(model, keep, frames, tool.make_track_sample,
                               h, w)
        rows.append(row)
        calls.append(fns)
    print(f'timing {len(rows)} rows x {args.repeat} rounds ...', flush=True)
    model_repeat = min(args.model_repeat or args.repeat, args.repeat)
    times = interleaved_times(calls, args.repeat, model_repeat)
    base = rows[0]
    for row, t in zip(rows, times):
        row['backbone_ms'] = t['backbone'] * 1e3
        row['pyramid_ms'] = t['pyramid'] * 1e3
        row['vit_ms'] = t['vit'] * 1e3
        row['head_ms_per_frame'] = t['head'] * 1e3 / args.frames
        row['model_ms'] = row['backbone_ms'] + row['head_ms_per_frame']
        row['runs_s'] = t['runs']
        for part, flops, ms in (('backbone', 'backbone_GFLOPs', 'backbone_ms'),
                                ('vit', 'vit_GFLOPs', 'vit_ms'),
                                ('model', 'model_GFLOPs', 'model_ms')):
            row[f'{part}_ideal_x'] = base[flops] / row[flops]
            row[f'{part}_measured_x'] = base[ms] / row[ms]
    cols = ['keep_ratio', 'frame_pkr', 'backbone_GFLOPs', 'backbone_ms',
            'backbone_ideal_x', 'backbone_measured_x', 'vit_GFLOPs', 'vit_ms',
            'vit_ideal_x', 'vit_measured_x', 'model_GFLOPs', 'model_ms',
            'model_ideal_x', 'model_measured_x']
    table = format_table(rows, cols, [
        'keep', 'PKR', 'backbone GFLOPs', 'backbone ms', 'ideal x',
        'measured x', 'ViT GFLOPs', 'ViT ms', 'ideal x', 'measured x',
        'model GFLOPs', 'model ms', 'ideal x', 'measured x'
    ])
    note = (f'per frame at {h}x{w}; first row = dense (keep 1.0). A pruned '
            'frame in steady state (prior from the previous frame). backbone '
            f'= ViT + pyramid (pyramid {base["pyramid_ms"]:.0f} ms, '
            f'{base["backbone_GFLOPs"] - base["vit_GFLOPs"]:.1f} GFLOPs, '
            'the same in every row); ViT = embedding + blocks + norm (timed '
            'without the pyramid); model = '
            'backbone + track_head.predict on a '
            f'{args.frames}-frame clip / {args.frames}. '
            f'{torch.get_num_threads()} threads; median of {args.repeat} '
            f'interleaved rounds ({model_repeat} for the head; all runs in '
            'the json).')
    print(table)
    print(note)
    out = write_json(
        dict(config=args.config, rows=rows, table=table, note=note,
             shape=[h, w], frames=args.frames, repeat=args.repeat,
             torch=torch.__version__, threads=torch.get_num_threads(),
             cpu=platform.processor() or platform.machine()), args.out)
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
