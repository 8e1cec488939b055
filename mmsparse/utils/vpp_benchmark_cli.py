"""The command line of ``tools/analysis_tools/benchmark_vpp.py``: dense vs
VPP schedules side by side, FLOPs and wall-clock per frame (what is measured
and how: the tool's docstring). A module of the package, so that
``tools/analysis_tools/benchmark.py`` hands a VPP config over to it by
import; the rows' code is :mod:`mmsparse.utils.vpp_benchmark`.
"""
import argparse
import platform
from typing import Optional, Sequence, Tuple

import torch
from mmengine.config import Config, DictAction

from .benchmark import format_table, write_json
from .vis_benchmark import (add_verbose_argument, check_frame_shape,
                            make_track_sample)
from .vpp_benchmark import (PARTS, add_times, build_row, decoder_options,
                            interleaved_times, measure_row, parse_schedule,
                            split_decoder)

DESCRIPTION = ('Dense vs VPP schedules side by side: FLOPs and wall-clock '
               'per frame.')


def row_specs(args, cfg) -> list:
    """The schedule strings of the rows, from the arguments."""
    specs = list(args.schedules or [])
    if args.keep_ratios:
        layer = cfg.model.backbone.get('prune_layer', 1)
        first = layer[0] if isinstance(layer, (list, tuple)) else layer
        specs += ['dense' if r == 1 else f'{first}:{r:g}'
                  for r in args.keep_ratios]
    return specs or ['dense', 'config']


def tables(rows):
    """The printed markdown tables (main, ViT/offline detail, profile)."""
    main = format_table(rows, [
        'row', 'frame_pkr', 'blocks', 'backbone_GFLOPs',
        'backbone_ideal_x_str', 'backbone_ms', 'backbone_measured_x_str',
        'offline_ms_per_frame', 'offline_measured_x_str', 'model_GFLOPs',
        'model_ms', 'model_ideal_x_str', 'model_measured_x_str'
    ], [
        'row', 'PKR', 'patches per block', 'backbone GFLOPs',
        'FLOPs ratio', 'streaming ms', 'measured', 'offline ms/frame',
        'measured', 'model GFLOPs', 'model ms', 'FLOPs ratio', 'measured'
    ])
    detail = format_table(rows, [
        'row', 'vit_GFLOPs', 'vit_ms', 'vit_ideal_x_str',
        'vit_measured_x_str', 'pyramid_ms', 'video_pkr',
        'offline_GFLOPs_per_frame', 'offline_ideal_x_str'
    ], [
        'row', 'ViT GFLOPs', 'ViT ms', 'FLOPs ratio', 'measured',
        'pyramid ms', 'clip PKR', 'offline GFLOPs/frame', 'FLOPs ratio'
    ])
    if 'part_ms' not in rows[0]:
        return main, detail, ''
    profile = format_table(
        rows, ['row'] + [f'{p} {u}' for p in PARTS for u in ('ms', 'GFLOPs')],
        ['row'] + [f'{p} {u}' for p in PARTS for u in ('ms', 'GFLOPs')])
    return main, detail, profile


def parse_args(argv: Optional[Sequence[str]] = None
               ) -> Tuple[argparse.ArgumentParser, argparse.Namespace]:
    """The parser and arguments of ``benchmark_vpp.py`` (and of
    ``benchmark.py`` on a VPP config)."""
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument('config', help='a VPP config')
    parser.add_argument('--schedules', nargs='+', default=None,
                        help="rows: 'dense', 'config' or 'L:r[,L:r...]', "
                        "each optionally with '@keepset', '@reuse' or "
                        "'@image' (the pixel decoder of the row)")
    parser.add_argument('--keep-ratios', type=float, nargs='+', default=None,
                        help="one stage per ratio at the config's first "
                        'pruning block (1.0 = dense); added after '
                        '--schedules')
    parser.add_argument('--checkpoint', default=None)
    parser.add_argument('--shape', type=int, nargs=2, default=[368, 640],
                        metavar=('H', 'W'))
    parser.add_argument('--frames', type=int, default=4,
                        help='clip length of the offline and head numbers')
    parser.add_argument('--repeat', type=int, default=5,
                        help='timed rounds of the backbone parts')
    parser.add_argument('--model-repeat', type=int, default=None,
                        help='timed rounds of the head (default: --repeat)')
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--device', default='cpu',
                        help="'cpu' or 'cuda' (CUDA timings synchronise "
                        'before reading the clock)')
    parser.add_argument('--out', default='work_dirs/benchmark/vpp.json')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    if args.frames < 2 or args.repeat < 1:
        parser.error('--frames must be >= 2 and --repeat >= 1')
    if any(not 0 < r <= 1 for r in args.keep_ratios or []):
        parser.error('--keep-ratios must be in (0, 1]')
    check_frame_shape(parser, args.shape)
    return parser, args


def row_schedules(parser: argparse.ArgumentParser,
                  args: argparse.Namespace) -> Tuple[list, list, list]:
    """The rows' schedule strings, ``(prune_layer, keep_ratio)`` (None:
    dense) and ``(schedule, decoder)`` of each; errors through
    ``parser``."""
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if cfg.model.get('backbone', {}).get('type') != 'VPPBackbone':
        parser.error(f'{args.config} is not a VPP config '
                     '(model.backbone.type must be VPPBackbone)')
    specs = row_specs(args, cfg)
    try:
        split = [split_decoder(s) for s in specs]
        schedules = [parse_schedule(s) for s, _ in split]
    except ValueError as err:
        parser.error(str(err))
    return specs, schedules, split


def measure_rows(args: argparse.Namespace, specs: list, schedules: list,
                 split: list, frames: torch.Tensor) -> Tuple[list, list, list]:
    """Build every row's model, count its FLOPs and keep counts; returns
    the rows, their timed calls and their head parts."""
    h, w = args.shape
    rows, calls, part_runs = [], [], []
    for spec, schedule, (_, decoder) in zip(specs, schedules, split):
        opts = dict(args.cfg_options or {}) | decoder_options(decoder)
        if schedule is not None:
            opts['model.backbone.prune_layer'] = schedule[0]
            opts['model.backbone.keep_ratio'] = schedule[1]
        opts['model.backbone.backbone.init_cfg'] = None  # no downloads
        model = build_row(args.config, args.checkpoint, opts,
                          verbose=args.verbose).to(frames.device)
        print(f'{spec}: counting FLOPs ...', flush=True)
        row, fns, parts = measure_row(model, frames, make_track_sample,
                                      h, w)
        row['row'] = row['schedule'] + (f'@{decoder}' if decoder else '')
        rows.append(row)
        calls.append(fns)
        part_runs.append(parts)
    return rows, calls, part_runs


def note_text(args: argparse.Namespace, base: dict, where: str,
              model_repeat: int) -> str:
    """The note printed under the tables (what each column means)."""
    h, w = args.shape
    return (f'per frame at {h}x{w} ({base["num_patches"]} patches), '
            f'{where}; ratios against the {base["row"]} row. PKR and '
            'patches per block: a pruned frame. streaming = one frame at '
            'batch 1 (VPP: a pruned frame, prior from the frame before); '
            f'offline = a {args.frames}-frame clip / {args.frames} (dense '
            'batched over the clip, VPP frame by frame, frame 0 dense: '
            '"clip PKR"). backbone = ViT + pyramid (pyramid '
            f'{base["pyramid_ms"]:.0f} ms, '
            f'{base["backbone_GFLOPs"] - base["vit_GFLOPs"]:.1f} GFLOPs, '
            'the same in every row); ViT = embedding + blocks + norm (timed '
            'without the pyramid); model = streaming backbone + '
            f'track_head.predict on a {args.frames}-frame clip / '
            f'{args.frames} (every frame pruned, with the keep sets of a '
            'pruned frame; row@DECODER: the pixel decoder of the row). '
            'Profile: ms and GFLOPs per frame of each part of the model '
            '(head parts: module hooks inside the timed head calls, median '
            f'of {model_repeat}; deformable encoder = pixel decoder minus '
            'input projections and FPN). Median of '
            f'{args.repeat} interleaved rounds ({model_repeat} for the '
            'head; all runs in the json).')


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Measure the rows of the command line ``argv`` (default
    ``sys.argv[1:]``), print the tables and write the JSON."""
    parser, args = parse_args(argv)
    specs, schedules, split = row_schedules(parser, args)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == 'cuda' else None

    torch.manual_seed(0)
    h, w = args.shape
    frames = torch.randn(args.frames, 3, h, w, device=device)
    rows, calls, part_runs = measure_rows(args, specs, schedules, split,
                                          frames)
    print(f'timing {len(rows)} rows x {args.repeat} rounds ...', flush=True)
    model_repeat = min(args.model_repeat or args.repeat, args.repeat)
    times = interleaved_times(calls, args.repeat, model_repeat, sync)
    base = add_times(rows, times, args.frames, part_runs)
    table, detail, profile = tables(rows)
    where = (torch.cuda.get_device_name(device) if device.type == 'cuda'
             else f'CPU, {torch.get_num_threads()} threads')
    note = note_text(args, base, where, model_repeat)
    print(table)
    print()
    print(detail)
    print()
    print(profile)
    print(note)
    out = write_json(
        dict(config=args.config, rows=rows, table=table, detail=detail,
             profile=profile,
             note=note, shape=[h, w], frames=args.frames, repeat=args.repeat,
             device=str(device), torch=torch.__version__,
             threads=torch.get_num_threads(),
             cpu=platform.processor() or platform.machine()), args.out)
    print(f'wrote {out}')
