"""FLOPs and wall-clock of a video instance segmentation model, per frame.

    python tools/analysis_tools/benchmark.py CONFIG [--shape 368 640]
        [--frames 2] [--repeat 5] [--threads N] [--out bench.json]
        [--checkpoint CKPT] [--cfg-options k=v ...] [--verbose]

Measures, on synthetic frames of the given size, in one process:

* backbone: FLOPs (mmengine.analysis, fvcore convention) and the median
  wall-clock of ``backbone(frames)`` divided by the number of frames;
* whole model: FLOPs of backbone + ``track_head.forward`` and the median
  wall-clock of ``model.predict`` (backbone, head, post-processing) on a
  T-frame clip, divided by T.

Prints a markdown table and writes JSON. These are the dense numbers every
pruning method is compared against; several configs given at once are
measured side by side, in the same run.

Given a VPP config (backbone ``VPPBackbone``), it hands over to the command
line of ``benchmark_vpp.py`` (:mod:`mmsparse.utils.vpp_benchmark_cli`; same
flags, plus ``--schedules dense config 1:0.4 ...`` and ``--keep-ratios``):
dense vs VPP schedules side by side, streaming and offline, with the FLOPs
ratio beside the measured one.

Quiet by default: while models are built, mmengine's logger stays at WARNING
(:func:`mmsparse.utils.vis_benchmark.quiet_model_logs`, used by every tool
of this folder that builds models), so ``init_weights``' per-parameter
report (four lines per parameter) does not bury the table; ``--verbose``
keeps it.
"""
import argparse
import os.path as osp
import platform
import sys

import torch
from mmengine.config import Config, DictAction

import mmsparse  # noqa: F401
from mmsparse.utils.benchmark import format_table, time_call, write_json
from mmsparse.utils.vis_benchmark import (add_verbose_argument, build,
                                          check_frame_shape, make_track_sample,
                                          model_flops)
from mmsparse.utils.vpp_benchmark_cli import main as vpp_main


def benchmark_model(model, name: str, num_frames: int, h: int, w: int,
                    repeat: int) -> dict:
    """Measure one built model; returns a row of the table."""
    model.eval()
    frames = torch.randn(num_frames, 3, h, w)
    bb_flops, all_flops = model_flops(model, frames)

    with torch.no_grad():
        bb_time = time_call(lambda: model.backbone(frames), repeat=repeat)
        full_time = time_call(
            lambda: model.predict(frames[None], [
                make_track_sample(num_frames, h, w)
            ]),
            repeat=repeat)
    return dict(
        model=name,
        frames=num_frames,
        input=f'{h}x{w}',
        backbone_params_M=bb_flops['params'] / 1e6,
        model_params_M=all_flops['params'] / 1e6,
        backbone_GFLOPs_per_frame=bb_flops['flops'] / 1e9 / num_frames,
        model_GFLOPs_per_frame=all_flops['flops'] / 1e9 / num_frames,
        backbone_ms_per_frame=bb_time['median'] * 1e3 / num_frames,
        model_ms_per_frame=full_time['median'] * 1e3 / num_frames,
        backbone_share=bb_time['median'] / full_time['median'],
        uncounted_ops=sorted(
            set(bb_flops['uncounted']) | set(all_flops['uncounted'])),
        backbone_runs_s=bb_time['runs'],
        model_runs_s=full_time['runs'])


def is_vpp_config(path: str) -> bool:
    """Whether ``path`` is a config whose backbone is a ``VPPBackbone``."""
    if not osp.isfile(path):
        return False
    backbone = Config.fromfile(path).model.get('backbone', {})
    return backbone.get('type') == 'VPPBackbone'


def main():
    if {'--keep-ratios', '--schedules'} & set(sys.argv) or any(
            is_vpp_config(a) for a in sys.argv[1:] if a.endswith('.py')):
        vpp_main(sys.argv[1:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='+', help='one or more configs')
    parser.add_argument('--checkpoint', default=None)
    parser.add_argument('--shape', type=int, nargs=2, default=[368, 640],
                        metavar=('H', 'W'))
    parser.add_argument('--frames', type=int, default=2)
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch.set_num_threads (default: torch\'s)')
    parser.add_argument('--out', default='work_dirs/benchmark/dense.json')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    add_verbose_argument(parser)
    args = parser.parse_args()
    if args.frames < 1 or args.repeat < 1:
        parser.error('--frames and --repeat must be >= 1')
    check_frame_shape(parser, args.shape)
    h, w = args.shape
    if args.threads:
        torch.set_num_threads(args.threads)

    rows = []
    for config in args.configs:
        model = build(config, args.checkpoint, args.cfg_options,
                      args.verbose)
        name = osp.splitext(osp.basename(config))[0]
        print(f'benchmarking {name} at {h}x{w}, {args.frames} frames ...',
              flush=True)
        rows.append(
            benchmark_model(model, name, args.frames, h, w, args.repeat))

    cols = ['model', 'input', 'backbone_params_M', 'backbone_GFLOPs_per_frame',
            'backbone_ms_per_frame', 'model_GFLOPs_per_frame',
            'model_ms_per_frame', 'backbone_share']
    table = format_table(rows, cols, [
        'model', 'input', 'backbone params (M)', 'backbone GFLOPs/frame',
        'backbone ms/frame', 'model GFLOPs/frame', 'model ms/frame',
        'backbone share of time'
    ])
    print(table)
    uncounted = sorted({op for r in rows for op in r['uncounted_ops']})
    if uncounted:
        print(f'FLOPs exclude operators without a counter: {uncounted}')
    out = write_json(
        dict(
            rows=rows,
            table=table,
            torch=torch.__version__,
            threads=torch.get_num_threads(),
            cpu=platform.processor() or platform.machine(),
            repeat=args.repeat), args.out)
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
