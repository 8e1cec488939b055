"""Rows of the composed benchmark: dense and P3B-slim ViT, each without
VPP and with VPP schedules, built from the VPP and the composed configs; the
slim architecture made without training when no P3B export is given. Shared
by ``benchmark_composed.py`` and ``profile_composed.py`` in
``tools/analysis_tools/``."""
import argparse
import copy
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmsparse.models.backbones.p3b_export import write_p3b_export
from mmsparse.p3b import untrained_pruner
from mmsparse.registry import MODELS
from .vis_benchmark import (add_verbose_argument, build, make_track_sample,
                            quiet_model_logs)
from .vpp_benchmark import measure_row, parse_schedule


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
            :func:`~mmsparse.utils.vis_benchmark.quiet_model_logs`). Defaults to False.

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
    with quiet_model_logs(verbose):
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
    add_verbose_argument(parser)


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
    try:
        schedules = [parse_schedule('dense')] + [
            parse_schedule(s) for s in args.vpp]
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
        :func:`~mmsparse.utils.vpp_benchmark.measure_row`'s keys), ``calls`` (per row the
        callables of ``measure_row``: ``backbone`` is the steady-state
        frame), ``slim_info`` (the export, its keep ratio) and ``models``
        (per row the built model, in eval mode).
    """
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
            model = build(config, None, opts, args.verbose).to(device)
            row, fns, _ = measure_row(model, frames, make_track_sample, h, w)
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
