"""Dense vs VPP schedules side by side: FLOPs and wall-clock per frame.

    python tools/analysis_tools/benchmark_vpp.py CONFIG
        [--schedules dense config 1:0.4 1:0.7,3:0.56,6:0.448,9:0.358
                     config@keepset config@reuse config@image ...]
        [--keep-ratios 1.0 0.4 ...] [--shape 368 640] [--frames 4]
        [--repeat 5] [--model-repeat N] [--threads N] [--device cpu]
        [--out work_dirs/benchmark/vpp.json] [--checkpoint CKPT]
        [--cfg-options k=v ...] [--verbose]

CONFIG is a VPP config (``model.backbone.type='VPPBackbone'``). Every row is
a *schedule*, built with ``model.backbone.prune_layer`` /
``model.backbone.keep_ratio`` set from it:

* ``dense``: keep ratio 1.0 (the wrapped dense backbone, bit-exact);
* ``config``: the config's own schedule (one or several stages);
* ``L:r[,L:r...]``: stages, e.g. ``1:0.4`` (one stage at block 1) or the
  paper's ViT-S schedule ``1:0.7,3:0.56,6:0.448,9:0.358``.

``--keep-ratios r ...`` is short for one stage per ratio at the config's
first pruning block (1.0 = ``dense``). Default rows: ``dense config``.

A schedule may end in ``@DECODER`` to swap the pixel decoder of that row
(set on top of the config; give the plain VPP config):

* ``@keepset``: :class:`~mmsparse.models.vis.KeepSetPixelDecoder`, the
  encoder updates only the queries at VPP's kept positions;
* ``@reuse``: the same, positions not updated take the previous frame's
  encoder output (the same work per frame);
* ``@image``: the same decoder, positions chosen by an image score.

Two ways to run a video, both measured (per frame):

* **streaming**: one frame at a time, batch 1, as a frame arrives. Dense:
  ``backbone(frame)``; VPP: a *pruned* frame in steady state (its prior from
  the frame before). This is the setting of the paper's claim (online VIS,
  frame t needs frame t-1) and what FLOPs per pruned frame describe.
* **offline**: a whole ``--frames`` clip at once. Dense: one forward batched
  over the clip; VPP: the clip frame by frame at batch 1 (it cannot batch:
  frame t's selection needs frame t-1), frame 0 dense. On a GPU, batch-1
  steps are launch-bound, so the streaming speed-up need not carry over.

Also per row: the patches every block processes in a pruned frame (the PKR is
their mean / N), FLOPs and time of the ViT part alone (embedding, blocks,
norm; timed with the pyramid left out) and of the pyramid, which runs on the
full grid whatever is pruned; the whole model per frame (streaming backbone
+ ``track_head.predict`` on a ``--frames`` clip / frames, every frame of the
clip pruned as in steady state, with the keep sets of a pruned frame; only a
keep-set pixel decoder reads them). The whole model is also split into
parts (the profile, per frame): backbone, pixel-decoder input projections,
deformable encoder (the rest of the pixel decoder: position encodings,
reference points, keep-set gather/scatter included), FPN and mask features,
transformer decoder (the head's forward minus the pixel decoder) and
post-processing (``predict`` minus the forward), timed with module hooks
inside the timed runs; FLOPs per part beside them. The timings are
interleaved (one run of every row per
round, median over rounds, every run in the JSON) so that load changes on a
shared machine hit all rows alike.

FLOPs use ``mmengine.analysis`` (fvcore convention, 1 multiply-add = 1 FLOP)
with the attention switched to its explicit matmul path while counting
(fused SDPA has no counter); the timed runs use the fused path. The ideal
speed-up (dense FLOPs / FLOPs) is printed beside the measured one.

``--checkpoint`` (e.g. the VPP fine-tune) goes into every row; the dense row
has no selectors, so it skips the checkpoint's selector tensors with one line
saying how many (other mismatched keys are reported as usual).
"""
import argparse
import platform

import torch
from mmengine.config import Config, DictAction

from mmsparse.utils.benchmark import format_table, write_json
from mmsparse.utils.vis_benchmark import (add_verbose_argument,
                                          make_track_sample)
from mmsparse.utils.vpp_benchmark import (PARTS, add_times, build_row,
                                          decoder_options, interleaved_times,
                                          measure_row, parse_schedule,
                                          split_decoder)


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
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
    args = parser.parse_args()
    if args.frames < 2 or args.repeat < 1:
        parser.error('--frames must be >= 2 and --repeat >= 1')
    if any(not 0 < r <= 1 for r in args.keep_ratios or []):
        parser.error('--keep-ratios must be in (0, 1]')
    h, w = args.shape
    if h % 16 or w % 16:
        parser.error(f'--shape {h} {w}: both must be multiples of the patch '
                     'size 16 (368x640 = a 23x40 grid; real 640x360 frames '
                     'are padded to 384x640 by the data preprocessor)')
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
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == 'cuda' else None

    torch.manual_seed(0)
    frames = torch.randn(args.frames, 3, h, w, device=device)
    rows, calls, part_runs = [], [], []
    for spec, schedule, (_, decoder) in zip(specs, schedules, split):
        opts = dict(args.cfg_options or {}) | decoder_options(decoder)
        if schedule is not None:
            opts['model.backbone.prune_layer'] = schedule[0]
            opts['model.backbone.keep_ratio'] = schedule[1]
        opts['model.backbone.backbone.init_cfg'] = None  # no downloads
        model = build_row(args.config, args.checkpoint, opts,
                          verbose=args.verbose).to(device)
        print(f'{spec}: counting FLOPs ...', flush=True)
        row, fns, parts = measure_row(model, frames, make_track_sample,
                                      h, w)
        row['row'] = row['schedule'] + (f'@{decoder}' if decoder else '')
        rows.append(row)
        calls.append(fns)
        part_runs.append(parts)
    print(f'timing {len(rows)} rows x {args.repeat} rounds ...', flush=True)
    model_repeat = min(args.model_repeat or args.repeat, args.repeat)
    times = interleaved_times(calls, args.repeat, model_repeat, sync)
    base = add_times(rows, times, args.frames, part_runs)
    table, detail, profile = tables(rows)
    where = (torch.cuda.get_device_name(device) if device.type == 'cuda'
             else f'CPU, {torch.get_num_threads()} threads')
    note = (f'per frame at {h}x{w} ({base["num_patches"]} patches), '
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


if __name__ == '__main__':
    main()
