"""Rows of the VPP benchmark: a schedule's model (checkpoint loading that
skips the dense row's unused selectors), its FLOPs, keep counts and timed
calls (streaming frame, offline clip, ViT alone, pyramid, head with its
parts), the interleaved timing of all rows and the speed-ups against the
dense row. Used by ``benchmark_vpp.py``, ``benchmark_composed.py`` and
``get_flops.py`` in ``tools/analysis_tools/``."""
import contextlib
import re
import statistics
import time
from collections import OrderedDict

import torch
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader, load_state_dict

from mmsparse.vpp.keep_set import KeepSetFeatures
from .benchmark import ModuleTimer, count_flops
from .vis_benchmark import build, build_uninitialised, quiet_model_logs

PRUNER_PREFIX = 'backbone.pruner.'  # VPP's selector heads in a checkpoint


def build_row(config: str, checkpoint, cfg_options, logger=None,
              verbose: bool = False):
    """Build one row's model and load ``checkpoint`` (if any) into it.

    A VPP checkpoint holds the selector heads of its schedule
    (``backbone.pruner.*``); the dense row (keep ratio 1.0) builds none. Its
    load drops them first, with one line saying how many, instead of
    mmengine's "unexpected key" warning. Every other unexpected or missing
    key is still reported by mmengine (``load_state_dict``, not strict).

    Args:
        config (str): The VPP config.
        checkpoint (str, optional): Checkpoint to load; None keeps the
            initialised weights.
        cfg_options (dict): Config overrides of the row.
        logger (logging.Logger | str, optional): Where the messages go
            (:func:`mmengine.logging.print_log`). Defaults to None (print).
        verbose (bool): Keep mmengine's INFO logs of the build
            (``init_weights``' per-parameter report; see
            :func:`~mmsparse.utils.vis_benchmark.quiet_model_logs`).
            Defaults to False.

    Returns:
        nn.Module: The model, on the CPU.
    """
    if not checkpoint:
        return build(config, None, cfg_options, verbose)
    # as build, without init_weights (its per-parameter dump)
    with quiet_model_logs(verbose):
        model = build_uninitialised(config, cfg_options)
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
