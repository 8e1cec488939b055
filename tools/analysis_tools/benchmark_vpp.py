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
import contextlib
import importlib.util
import os.path as osp
import platform
import re
import statistics
import time
from collections import OrderedDict

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader, load_state_dict

from mmsparse.utils.benchmark import (ModuleTimer, count_flops, format_table,
                                      write_json)
from mmsparse.vpp.keep_set import KeepSetFeatures

PRUNER_PREFIX = 'backbone.pruner.'  # VPP's selector heads in a checkpoint


def _dense_tool():
    """The dense benchmark tool (build, make_track_sample) next to this."""
    path = osp.join(osp.dirname(osp.abspath(__file__)), 'benchmark.py')
    spec = importlib.util.spec_from_file_location('_mmsparse_benchmark', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_row(tool, config: str, checkpoint, cfg_options, logger=None,
              verbose: bool = False):
    """Build one row's model and load ``checkpoint`` (if any) into it.

    A VPP checkpoint holds the selector heads of its schedule
    (``backbone.pruner.*``); the dense row (keep ratio 1.0) builds none. Its
    load drops them first, with one line saying how many, instead of
    mmengine's "unexpected key" warning. Every other unexpected or missing
    key is still reported by mmengine (``load_state_dict``, not strict).

    Args:
        tool: The dense benchmark tool (:func:`_dense_tool`).
        config (str): The VPP config.
        checkpoint (str, optional): Checkpoint to load; None keeps the
            initialised weights.
        cfg_options (dict): Config overrides of the row.
        logger (logging.Logger | str, optional): Where the messages go
            (:func:`mmengine.logging.print_log`). Defaults to None (print).
        verbose (bool): Keep mmengine's INFO logs of the build
            (``init_weights``' per-parameter report; see
            ``benchmark.quiet_model_logs``). Defaults to False.

    Returns:
        nn.Module: The model, on the CPU.
    """
    if not checkpoint:
        return tool.build(config, None, cfg_options, verbose)
    # as tool.build, without init_weights (its per-parameter dump)
    with tool.quiet_model_logs(verbose):
        model = tool.build_uninitialised(config, cfg_options)
    ckpt = CheckpointLoader.load_checkpoint(checkpoint, 'cpu', logger)
    state_dict = ckpt.get('state_dict', ckpt)
    metadata = getattr(state_dict, '_metadata', OrderedDict())
    state_dict = OrderedDict((re.sub(r'^module\.', '', k), v)
                             for k, v in state_dict.items())
    state_dict._metadata = metadata
    if model.backbone.pruner.dense:
        own = model.state_dict()
        unused = [k for k in state_dict
                  if k.startswith(PRUNER_PREFIX) and k not in own]
        for key in unused:
            del state_dict[key]
        if unused:
            print_log(f'dense row: {len(unused)} VPP selector tensors of the '
                      f'checkpoint ({PRUNER_PREFIX}*) are not needed (keep '
                      'ratio 1.0 builds no selectors); not loaded',
                      logger=logger)
    load_state_dict(model, state_dict, strict=False, logger=logger)
    return model


#: ``@DECODER`` of a row: the pixel decoder options set on top of the config.
DECODERS = {
    'keepset': dict(type='KeepSetPixelDecoder', carry='input',
                    query_select='keep_set'),
    'reuse': dict(type='KeepSetPixelDecoder', carry='previous',
                  query_select='keep_set'),
    'image': dict(type='KeepSetPixelDecoder', carry='input',
                  query_select='image'),
}


def split_decoder(spec: str):
    """``'SCHEDULE[@DECODER]'`` -> (schedule, decoder name or None)."""
    schedule, _, decoder = spec.partition('@')
    if decoder and decoder not in DECODERS:
        raise ValueError(f'row {spec!r}: unknown decoder {decoder!r}; use '
                         f'one of {sorted(DECODERS)}')
    return schedule, decoder or None


def decoder_options(decoder) -> dict:
    """``--cfg-options`` of a row's ``@DECODER`` (none without one)."""
    if decoder is None:
        return {}
    return {f'model.track_head.pixel_decoder.{k}': v
            for k, v in DECODERS[decoder].items()}


def parse_schedule(spec: str):
    """``'dense'`` | ``'config'`` | ``'L:r[,L:r...]'`` -> (layers, ratios).

    Returns None for ``'config'`` (keep the config's schedule) and
    ``([1], [1.0])`` for ``'dense'``. Raises ValueError on bad syntax (the
    backbone checks the values).
    """
    if spec == 'config':
        return None
    if spec == 'dense':
        return [1], [1.0]
    layers, ratios = [], []
    try:
        for stage in spec.split(','):
            layer, ratio = stage.split(':')
            layers.append(int(layer))
            ratios.append(float(ratio))
    except ValueError:
        raise ValueError(
            f"schedule {spec!r}: use 'dense', 'config' or "
            "'LAYER:KEEP[,LAYER:KEEP...]', e.g. 1:0.7,3:0.56") from None
    return layers, ratios


def schedule_name(layers, ratios) -> str:
    """Inverse of :func:`parse_schedule` (``'dense'`` for keep 1.0)."""
    if list(ratios) == [1.0]:
        return 'dense'
    return ','.join(f'{layer}:{ratio:g}'
                    for layer, ratio in zip(layers, ratios))


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


#: Parts of the head (profile), by the modules of the pixel decoder (the
#: keep-set decoder runs its FPN output conv in ``gated_output_conv``).
FPN_MODULES = ('lateral_convs', 'output_convs', 'mask_feature',
               'gated_output_conv')
PARTS = ['backbone', 'input projections', 'deformable encoder',
         'FPN + mask features', 'transformer decoder', 'post-processing']


def steady_state_keep(feats):
    """The keep sets of a clip in steady state: every frame pruned (frame 0,
    dense in the video, takes frame 1's keep set); None when dense."""
    if feats.keep is None:
        return None
    keep = feats.keep.clone()
    keep[0] = keep[1]
    return keep


def head_part_timer(head):
    """A :class:`ModuleTimer` over the head's parts (the members of a
    ModuleList, which is never called itself)."""
    dec = head.pixel_decoder
    fpn = []
    for name in FPN_MODULES:
        module = getattr(dec, name, None)
        if isinstance(module, torch.nn.ModuleList):
            fpn.extend(module)
        elif module is not None:
            fpn.append(module)
    return ModuleTimer({
        'head forward': [head],
        'pixel decoder': [dec],
        'input projections': list(dec.input_convs),
        'FPN + mask features': fpn,
    })


def head_parts(seconds: dict, predict_s: float) -> dict:
    """Seconds of the profile's head parts from a :class:`ModuleTimer`."""
    dec = seconds['pixel decoder']
    return {
        'input projections': seconds['input projections'],
        'deformable encoder': (dec - seconds['input projections'] -
                               seconds['FPN + mask features']),
        'FPN + mask features': seconds['FPN + mask features'],
        'transformer decoder': seconds['head forward'] - dec,
        'post-processing': predict_s - seconds['head forward'],
    }


def head_part_flops(flops: dict) -> dict:
    """FLOPs of the profile's head parts from ``count_flops(by_module)``."""
    mod = flops['module_flops']
    fpn = sum(mod[f'pixel_decoder.{n}'] for n in FPN_MODULES)
    inp = mod['pixel_decoder.input_convs']
    return {
        'input projections': inp,
        'deformable encoder': mod['pixel_decoder'] - inp - fpn,
        'FPN + mask features': fpn,
        'transformer decoder': flops['flops'] - mod['pixel_decoder'],
        'post-processing': 0.0,
    }


def measure_row(model, frames, sample_fn, h, w):
    """FLOPs, keep counts and the timed callables of one built model."""
    model.eval()
    bb = model.backbone
    if not hasattr(bb, 'forward_stream'):
        raise TypeError(f'{type(bb).__name__} is not a VPPBackbone; give a '
                        'VPP config (model.backbone.type=VPPBackbone)')
    T = frames.shape[0]
    pruner = bb.pruner
    with torch.no_grad():
        _, prior = bb.forward_stream(frames[:1])
        feat = bb.backbone.tokens_to_featmap(*bb.backbone.embed(frames[1:2]))
        bb.forward_stream(frames[1:2], prior)
        if bb.last_stats:
            frame_stats = bb.last_stats[-1]
            counts, n = frame_stats.counts, frame_stats.num_tokens
        else:  # dense
            n = feat.shape[-2] * feat.shape[-1]
            counts = [n] * pruner.num_layers
        feats = bb(frames)
        video_pkr = (sum(s.pkr for s in bb.last_stats) / T
                     if bb.last_stats else 1.0)
    keep = steady_state_keep(feats)

    def head_input(x):
        return KeepSetFeatures(list(x), keep, feats.hw, T)

    def frame_fn(x):
        return bb.forward_stream(x, prior)[0]

    def head_fn(x):
        return model.track_head(head_input(x), sample_fn(T, h, w))

    dec_names = ['pixel_decoder', 'pixel_decoder.input_convs'] + [
        f'pixel_decoder.{n}' for n in FPN_MODULES]
    with explicit_attention(model):
        bb_flops = count_flops(bb, frames[1:2], fn=frame_fn)
        clip_flops = count_flops(bb, frames)
        pyr_flops = count_flops(bb.backbone.pyramid, feat)
        head_flops = count_flops(
            model.track_head, tuple(feats), fn=head_fn, by_module=dec_names)
    head_per_frame = head_flops['flops'] / 1e9 / T
    part_gflops = {'backbone': bb_flops['flops'] / 1e9}
    part_gflops.update({k: v / 1e9 / T
                        for k, v in head_part_flops(head_flops).items()})
    decoder = model.track_head.pixel_decoder
    row = dict(
        schedule=schedule_name(pruner.prune_layers, pruner.keep_ratios),
        pixel_decoder=type(decoder).__name__ + (
            f"({decoder.carry}, {decoder.query_select})"
            if hasattr(decoder, 'carry') else ''),
        prune_layer=list(pruner.prune_layers),
        keep_ratio=list(pruner.keep_ratios),
        num_patches=n,
        patches_per_block=list(counts),
        frame_pkr=sum(counts) / (len(counts) * n),
        video_pkr=video_pkr,
        backbone_GFLOPs=bb_flops['flops'] / 1e9,
        vit_GFLOPs=(bb_flops['flops'] - pyr_flops['flops']) / 1e9,
        offline_GFLOPs_per_frame=clip_flops['flops'] / 1e9 / T,
        head_GFLOPs_per_frame=head_per_frame,
        model_GFLOPs=bb_flops['flops'] / 1e9 + head_per_frame,
        part_GFLOPs=part_gflops,
        uncounted_ops=sorted(set(bb_flops['uncounted'])
                             | set(head_flops['uncounted'])))

    def vit_only():
        pyramid = bb.backbone.pyramid
        bb.backbone.pyramid = _NoPyramid()
        try:
            return frame_fn(frames[1:2])
        finally:
            bb.backbone.pyramid = pyramid

    timer = head_part_timer(model.track_head)
    part_runs = []

    def head_call():
        timer.reset()
        start = time.perf_counter()
        out = model.track_head.predict(head_input(feats), sample_fn(T, h, w))
        part_runs.append(head_parts(timer.seconds,
                                    time.perf_counter() - start))
        return out

    calls = dict(
        backbone=lambda: frame_fn(frames[1:2]),
        offline=lambda: bb(frames),
        vit=vit_only,
        pyramid=lambda: bb.backbone.pyramid(feat),
        head=head_call)
    return row, calls, part_runs


def interleaved_times(calls_per_row, repeat, model_repeat, sync=None):
    """Median (and min) seconds of every call over rounds (one run of every
    row per round); the expensive ``head`` call only in the first
    ``model_repeat`` rounds. ``sync`` (e.g. ``torch.cuda.synchronize``) is
    called before the clock is read."""
    sync = sync or (lambda: None)
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
                    sync()
                    start = time.perf_counter()
                    fn()
                    sync()
                    out[key].append(time.perf_counter() - start)
    return [{k: statistics.median(v) for k, v in r.items()}
            | {f'{k}_min': min(v) for k, v in r.items()}
            | {'runs': r} for r in runs]


def row_specs(args, cfg) -> list:
    """The schedule strings of the rows, from the arguments."""
    specs = list(args.schedules or [])
    if args.keep_ratios:
        layer = cfg.model.backbone.get('prune_layer', 1)
        first = layer[0] if isinstance(layer, (list, tuple)) else layer
        specs += ['dense' if r == 1 else f'{first}:{r:g}'
                  for r in args.keep_ratios]
    return specs or ['dense', 'config']


def add_times(rows, times, frames, part_runs=None):
    """Milliseconds and speed-ups against the dense (else the first) row.

    ``part_runs`` (per row, the head parts of every head call, the warm-up
    first) give the profile: median milliseconds per frame of each part.
    """
    for i, (row, t) in enumerate(zip(rows, times)):
        row['backbone_ms'] = t['backbone'] * 1e3
        row['offline_ms_per_frame'] = t['offline'] * 1e3 / frames
        row['pyramid_ms'] = t['pyramid'] * 1e3
        row['vit_ms'] = t['vit'] * 1e3
        row['head_ms_per_frame'] = t['head'] * 1e3 / frames
        row['model_ms'] = row['backbone_ms'] + row['head_ms_per_frame']
        row['offline_model_ms'] = (row['offline_ms_per_frame'] +
                                   row['head_ms_per_frame'])
        row['runs_s'] = t['runs']
        if part_runs is not None:
            runs = part_runs[i][1:]  # without the warm-up
            row['part_ms'] = {'backbone': row['backbone_ms']} | {
                k: statistics.median(r[k] for r in runs) * 1e3 / frames
                for k in runs[0]}
            row['part_runs_s'] = runs
    base = next((r for r in rows if r['row'] == 'dense'), rows[0])
    for row in rows:
        for part, flops, ms in (
                ('backbone', 'backbone_GFLOPs', 'backbone_ms'),
                ('offline', 'offline_GFLOPs_per_frame',
                 'offline_ms_per_frame'),
                ('vit', 'vit_GFLOPs', 'vit_ms'),
                ('model', 'model_GFLOPs', 'model_ms')):
            row[f'{part}_ideal_x'] = base[flops] / row[flops]
            row[f'{part}_measured_x'] = base[ms] / row[ms]
        row['blocks'] = ' '.join(str(c) for c in row['patches_per_block'])
        for part in row.get('part_ms', {}):
            row[f'{part} ms'] = row['part_ms'][part]
            row[f'{part} GFLOPs'] = row['part_GFLOPs'][part]
        for key in list(row):
            if key.endswith('_x'):
                row[key + '_str'] = f'{row[key]:.2f}x'
    return base


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
    tool = _dense_tool()
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
    tool.add_verbose_argument(parser)
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
        model = build_row(tool, args.config, args.checkpoint, opts,
                          verbose=args.verbose).to(device)
        print(f'{spec}: counting FLOPs ...', flush=True)
        row, fns, parts = measure_row(model, frames, tool.make_track_sample,
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
