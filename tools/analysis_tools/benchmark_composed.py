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
frames op by op (:func:`build_rows` makes the rows for both).
"""
import argparse
import copy
import importlib.util
import os.path as osp
import platform
import tempfile

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmsparse  # noqa: F401
from mmsparse.models.backbones.p3b_export import write_p3b_export
from mmsparse.p3b import untrained_pruner
from mmsparse.registry import MODELS
from mmsparse.utils.benchmark import format_table, write_json

HERE = osp.dirname(osp.abspath(__file__))


def _tool(name):
    path = osp.join(HERE, name)
    spec = importlib.util.spec_from_file_location(f'_mmsparse_{name[:-3]}',
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_slim_export(vit_cfg: dict, out_dir: str, keep: float, score: str,
                     seed: int = 0, width_multiple: int = 8,
                     verbose: bool = False) -> dict:
    """A P3B export of the dense ViT of ``vit_cfg`` without training.

    Args:
        vit_cfg (dict): The VIS config's ``ViTPyramid`` backbone config
            (``arch``, ``patch_size``, ``img_size``).
        out_dir (str): Export folder (``slim_model.pth``/``.py``).
        keep (float): Fraction of the classifier's parameters kept.
        score (str): 'random' or 'magnitude' element scores.
        seed (int): Seed of the dense weights and the scores. Defaults to 0.
        width_multiple (int): Kept widths are multiples of it. Defaults
            to 8.
        verbose (bool): Keep mmengine's INFO logs of ``init_weights`` (see
            ``benchmark.quiet_model_logs``). Defaults to False.

    Returns:
        dict: ``slim_arch``, ``keep_ratio`` (achieved) and ``out_dir``.
    """
    img = vit_cfg.get('img_size', 224)
    img = img if isinstance(img, int) else int(img[0])
    patch = vit_cfg.get('patch_size', 16)
    arch = vit_cfg.get('arch', 'small')
    if isinstance(arch, str):
        from mmsparse.models.backbones import ViTPyramid
        arch = dict(ViTPyramid.arch_zoo[arch.lower()])
    arch = {k: arch[k] for k in ('embed_dims', 'num_layers', 'num_heads',
                                 'feedforward_channels')}
    img = img - img % patch
    cfg = dict(
        type='ImageClassifier',
        backbone=dict(type='VisionTransformer', arch=arch, img_size=img,
                      patch_size=patch, drop_path_rate=0.0),
        neck=None,
        head=dict(type='VisionTransformerClsHead', num_classes=1000,
                  in_channels=arch['embed_dims']))
    init_default_scope('mmpretrain')
    torch.manual_seed(seed)
    with _tool('benchmark.py').quiet_model_logs(verbose):
        dense = MODELS.build(copy.deepcopy(cfg))
        dense.init_weights()
    pruner = untrained_pruner(dense, keep, score, seed=seed,
                              width_multiple=width_multiple)
    slim_arch = pruner.slim_arch()
    cfg['backbone'].update(type='SlimVisionTransformer', slim_arch=slim_arch,
                           init_cfg=None)
    state = pruner.slim_state_dict(dense)
    achieved = pruner.global_keep_ratio()
    pruner.remove()
    write_p3b_export(out_dir, cfg, state, slim_arch, keep_ratio=achieved,
                     made_by=f'benchmark_composed ({score} scores, uniform '
                     'block budget, no training)')
    return dict(slim_arch=slim_arch, keep_ratio=achieved, out_dir=out_dir)


def add_row_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments that choose the rows (shared with profile_composed)."""
    parser.add_argument('--vpp-config',
                        default='configs/vpp_mask2former_ytvis21.py')
    parser.add_argument(
        '--composed-config',
        default='configs/composed/p3b-vpp_mask2former_vit-s_ytvis21.py')
    parser.add_argument('--export', default=None,
                        help='P3B export folder (default: make one here)')
    parser.add_argument('--slim-keep', type=float, default=0.5)
    parser.add_argument('--slim-score', choices=['random', 'magnitude'],
                        default='random')
    parser.add_argument('--vpp', nargs='+',
                        default=['1:0.7,3:0.56,6:0.448,9:0.358', '1:0.4'],
                        help="VPP schedules: 'LAYER:KEEP[,LAYER:KEEP...]' "
                        "or 'config'")
    parser.add_argument('--shape', type=int, nargs=2, default=[368, 640],
                        metavar=('H', 'W'))
    parser.add_argument('--frames', type=int, default=4)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--device', default='cpu')
    _tool('benchmark.py').add_verbose_argument(parser)


def check_row_arguments(parser: argparse.ArgumentParser,
                        args: argparse.Namespace) -> list:
    """Check the row arguments (``parser.error`` on bad ones), set the
    thread count; returns the parsed schedules (dense first)."""
    if args.frames < 2:
        parser.error('--frames must be >= 2')
    if not 0 < args.slim_keep < 1:
        parser.error('--slim-keep must be in (0, 1)')
    h, w = args.shape
    if h % 16 or w % 16:
        parser.error(f'--shape {h} {w}: both must be multiples of 16')
    vpp_tool = _tool('benchmark_vpp.py')
    try:
        schedules = [vpp_tool.parse_schedule('dense')] + [
            vpp_tool.parse_schedule(s) for s in args.vpp]
    except ValueError as err:
        parser.error(str(err))
    if Config.fromfile(args.vpp_config).model.backbone.get(
            'type') != 'VPPBackbone':
        parser.error(f'{args.vpp_config} is not a VPP config')
    if args.threads:
        torch.set_num_threads(args.threads)
    return schedules


def build_rows(args: argparse.Namespace, schedules: list, export_dir: str):
    """Build every row's model: FLOPs, keep counts and timed callables.

    Args:
        args (Namespace): The row arguments (:func:`add_row_arguments`).
        schedules (list): From :func:`check_row_arguments`.
        export_dir (str): Where the slim export is made when ``--export``
            is not given (a temporary folder of the caller).

    Returns:
        tuple: ``rows`` (dicts: ``model``, ``vit_block_params_M`` and
        ``benchmark_vpp.measure_row``'s keys), ``calls`` (per row the
        callables of ``measure_row``: ``backbone`` is the steady-state
        frame), ``slim_info`` (the export, its keep ratio) and ``models``
        (per row the built model, in eval mode).
    """
    dense_tool, vpp_tool = _tool('benchmark.py'), _tool('benchmark_vpp.py')
    device = torch.device(args.device)
    h, w = args.shape
    vpp_cfg = Config.fromfile(args.vpp_config)
    export, slim_info = args.export, dict(export=args.export)
    if export is None:
        export = osp.join(export_dir, 'p3b')
        print(f'making a slim architecture (keep {args.slim_keep}, '
              f'{args.slim_score} scores) ...', flush=True)
        slim_info = make_slim_export(
            vpp_cfg.model.backbone.backbone.to_dict(), export,
            args.slim_keep, args.slim_score, verbose=args.verbose)
        slim_info['export'] = None

    variants = [('dense', args.vpp_config, {}),
                ('P3B-slim', args.composed_config,
                 {'model.backbone.backbone.export': export})]
    torch.manual_seed(0)
    frames = torch.randn(args.frames, 3, h, w, device=device)
    rows, calls, models = [], [], []
    for name, config, extra in variants:
        for schedule in schedules:
            opts = dict(extra)
            opts['model.backbone.backbone.init_cfg'] = None  # no downloads
            if schedule is not None:
                opts['model.backbone.prune_layer'] = schedule[0]
                opts['model.backbone.keep_ratio'] = schedule[1]
            model = dense_tool.build(config, None, opts,
                                     args.verbose).to(device)
            row, fns, _ = vpp_tool.measure_row(model, frames,
                                               dense_tool.make_track_sample,
                                               h, w)
            label = name if row['schedule'] == 'dense' else \
                f'{name} + VPP {row["schedule"]}'
            if row['schedule'] != 'dense' and hasattr(
                    model.track_head.pixel_decoder, 'carry'):
                label += ' + keep-set decoder'
            row['row'] = label
            print(f'{label}: FLOPs counted', flush=True)
            vit = model.backbone.backbone
            rows.append(dict(
                model=label, vit_block_params_M=sum(
                    p.numel() for p in vit.blocks.parameters()) / 1e6,
                **row))
            calls.append(fns)
            models.append(model)
    return rows, calls, slim_info, models


def slim_source(args: argparse.Namespace, slim_info: dict) -> str:
    """Where the P3B-slim ViT of the rows came from, in words."""
    if args.export:
        return f'P3B export {args.export}'
    return ('slim architecture made without training (uniform block '
            f'budget, {args.slim_score} scores, keep {args.slim_keep} of '
            'the classifier parameters, achieved '
            f'{slim_info["keep_ratio"]:.3f}, widths x8)')


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
    vpp_tool = _tool('benchmark_vpp.py')
    tmp = tempfile.TemporaryDirectory(prefix='p3b_export_')
    rows, calls, slim_info, _ = build_rows(args, schedules, tmp.name)
    print(f'timing {len(rows)} rows x {args.repeat} rounds ...', flush=True)
    model_repeat = min(args.model_repeat or args.repeat, args.repeat)
    times = vpp_tool.interleaved_times(calls, args.repeat, model_repeat, sync)
    vpp_tool.add_times(rows, times, args.frames)  # against the dense row
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
