"""Dense vs P3B-slim vs VPP vs P3B-slim + VPP in one run, per frame.

    python tools/analysis_tools/benchmark_composed.py
        [--vpp-config configs/vpp_mask2former_ytvis21.py]
        [--composed-config configs/composed/p3b-vpp_mask2former_vit-s_ytvis21.py]
        [--export P3B_EXPORT_DIR | --slim-keep 0.5 --slim-score random]
        [--vpp "1:0.7,3:0.56,6:0.448,9:0.358" "1:0.4"]
        [--shape 368 640] [--frames 4] [--repeat 5] [--threads N]
        [--device cpu] [--out work_dirs/benchmark/composed.json] [--verbose]

Rows: every backbone (dense ViT, P3B-slim ViT) without VPP and with each
``--vpp`` schedule (``layer:keep`` stages; the defaults are the paper's ViT-S
schedule, Map-SM keep 0.7 at block 1 and targets 0.56 / 0.448 / 0.358 at
blocks 3 / 6 / 9, and a single stage keeping 0.4 from block 1). All rows are
built from the two configs with ``--cfg-options``: the VPP config with
``keep_ratio=1.0`` is the dense model (VPPBackbone runs the wrapped ViT
unchanged), the composed config is the same with the P3B-slim ViT.

The slim ViT comes from a P3B export (``--export``: the ``<work_dir>/p3b``
folder of a P3B run). Without one, a slim architecture is made here, without
training, and written through the same export files: the dense ViT as an
mmpretrain classifier, P3B's keep-ratio solve with a uniform block budget
keeping ``--slim-keep`` of the parameters, elements ranked by random
(``--slim-score random``) or weight-norm (``magnitude``) scores, kept widths
rounded to multiples of 8 (P3BHook's default). Speed depends on the kept
widths, not on which elements are kept.

Measured as ``benchmark_vpp.py`` measures (and with its code): FLOPs
(``mmengine.analysis``, 1 multiply-add = 1 FLOP) and wall-clock of one
backbone frame in steady state (VPP: a pruned frame with the prior of the
frame before), and per frame of the whole model (backbone frame + the head
on a ``--frames`` clip / frames), timings interleaved over rounds, medians.
Printed as a markdown table with the ideal (FLOPs) speed-up beside the
measured one and the share of the ideal reached; everything into the JSON.
``profile_composed.py`` (next to this) profiles the same rows' backbone
frames op by op (:func:`mmsparse.utils.composed_benchmark.build_rows` makes
the rows for both, the slim export included).
"""
import argparse
import platform
import tempfile

import torch

import mmsparse  # noqa: F401
from mmsparse.utils.benchmark import format_table, write_json
from mmsparse.utils.composed_benchmark import (add_row_arguments, build_rows,
                                               check_row_arguments,
                                               slim_source)
from mmsparse.utils.vpp_benchmark import add_times, interleaved_times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_row_arguments(parser)
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--model-repeat', type=int, default=None)
    parser.add_argument('--out', default='work_dirs/benchmark/composed.json')
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error('--repeat must be >= 1')
    schedules = check_row_arguments(parser, args)
    h, w = args.shape
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == 'cuda' else None
    tmp = tempfile.TemporaryDirectory(prefix='p3b_export_')
    rows, calls, slim_info, _ = build_rows(args, schedules, tmp.name)
    print(f'timing {len(rows)} rows x {args.repeat} rounds ...', flush=True)
    model_repeat = min(args.model_repeat or args.repeat, args.repeat)
    times = interleaved_times(calls, args.repeat, model_repeat, sync)
    add_times(rows, times, args.frames)  # against the dense row
    for row in rows:
        for part in ('backbone', 'vit', 'model'):
            share = row[f'{part}_measured_x'] / row[f'{part}_ideal_x']
            row[f'{part}_share_of_ideal'] = share
            row[f'{part}_share_of_ideal_str'] = f'{100 * share:.0f} %'
    table = format_table(rows, [
        'model', 'vit_block_params_M', 'frame_pkr', 'backbone_GFLOPs',
        'backbone_ms', 'backbone_ideal_x_str', 'backbone_measured_x_str',
        'backbone_share_of_ideal_str', 'model_GFLOPs', 'model_ms',
        'model_ideal_x_str', 'model_measured_x_str'
    ], [
        'model', 'ViT block params (M)', 'PKR', 'backbone GFLOPs',
        'backbone ms', 'FLOPs ratio', 'measured', 'of ideal',
        'model GFLOPs', 'model ms', 'FLOPs ratio', 'measured'
    ])
    slim_src = slim_source(args, slim_info)
    where = (torch.cuda.get_device_name(device) if device.type == 'cuda'
             else f'CPU, {torch.get_num_threads()} threads')
    note = (f'per frame at {h}x{w}, {where}; ratios against the dense row. '
            'backbone = ViT + pyramid, one frame streamed at batch 1 (VPP '
            'rows: a pruned frame, prior from the frame before; PKR of that '
            'frame); model = backbone + track_head.predict on a '
            f'{args.frames}-frame clip / {args.frames}. P3B-slim: '
            f'{slim_src}. Median of {args.repeat} interleaved rounds '
            f'({model_repeat} for the head; all runs and the offline/ViT '
            'columns in the json).')
    print(table)
    print(note)
    out = write_json(
        dict(vpp_config=args.vpp_config,
             composed_config=args.composed_config, slim=slim_info,
             rows=rows, table=table, note=note, shape=[h, w],
             frames=args.frames, repeat=args.repeat, device=str(device),
             torch=torch.__version__, threads=torch.get_num_threads(),
             cpu=platform.processor() or platform.machine()), args.out)
    tmp.cleanup()
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
