"""Build a video instance segmentation model for measuring it (no
downloads, quiet logs) and count its FLOPs on a synthetic clip: the shared
part of the benchmark tools in ``tools/analysis_tools/``."""
import argparse
import contextlib
import logging

import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

from mmsparse.registry import MODELS, drop_mmsparse_scope
from .benchmark import count_flops


def make_track_sample(num_frames: int, h: int, w: int):
    """A TrackDataSample with the metainfo Mask2FormerTrackHead needs."""
    from mmdet.structures import DetDataSample, TrackDataSample
    frames = []
    for i in range(num_frames):
        s = DetDataSample()
        s.set_metainfo(
            dict(
                img_shape=(h, w),
                ori_shape=(h, w),
                pad_shape=(h, w),
                batch_input_shape=(h, w),
                scale_factor=(1.0, 1.0),
                frame_id=i,
                video_length=num_frames,
                img_id=i))
        frames.append(s)
    return TrackDataSample(video_data_samples=frames)


def model_flops(model, frames: torch.Tensor):
    """:func:`count_flops` of the backbone and of backbone + ``track_head``
    (forward, no post-processing) on a clip ``frames`` (T, 3, H, W)."""
    model.eval()
    num_frames, _, h, w = frames.shape
    sample = make_track_sample(num_frames, h, w)

    def whole(x):
        feats = model.backbone(x)
        return model.track_head(feats, sample)

    return count_flops(model.backbone, frames), count_flops(model, frames, fn=whole)


@contextlib.contextmanager
def quiet_model_logs(verbose: bool = False):
    """mmengine's current logger at WARNING inside the block.

    ``BaseModule.init_weights`` logs, at INFO on the current ``MMLogger``,
    one four-line entry per parameter ("... - torch.Size([...]): The value is
    the same before and after calling `init_weights` of ..."), and model
    code logs checkpoint and export loads there too. Inside this block only
    warnings and errors get through; the level is restored afterwards, also
    on an exception.

    Args:
        verbose (bool): Leave the logger as it is (the tools' ``--verbose``).
            Defaults to False.
    """
    if verbose:
        yield
        return
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def check_frame_shape(parser: argparse.ArgumentParser, shape) -> None:
    """Exit through ``parser.error`` unless both sides of ``--shape`` are
    multiples of the ViT's patch size 16."""
    h, w = shape
    if h % 16 or w % 16:
        parser.error(f'--shape {h} {w}: both must be multiples of the patch '
                     'size 16 (368x640 = a 23x40 grid; real 640x360 frames '
                     'are padded to 384x640 by the data preprocessor)')


def add_verbose_argument(parser: argparse.ArgumentParser) -> None:
    """``--verbose``: the tools' switch of :func:`quiet_model_logs` (keep
    mmengine's INFO logs while models are built)."""
    parser.add_argument('--verbose', action='store_true',
                        help="keep mmengine's INFO logs while building "
                        "(init_weights' per-parameter report)")


def build_uninitialised(config: str, cfg_options):
    """The config's model, built without ``init_weights`` and without
    pretrained weights (no downloads)."""
    cfg = drop_mmsparse_scope(Config.fromfile(config))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model_cfg = cfg.model
    # no downloads: weights come from --checkpoint or stay random
    model_cfg.init_cfg = None
    if 'init_cfg' in model_cfg.get('backbone', {}):
        model_cfg.backbone.init_cfg = None
    return MODELS.build(model_cfg)


def build(config: str, checkpoint, cfg_options, verbose: bool = False):
    """The config's model with ``checkpoint`` loaded, or initialised by
    ``init_weights`` without one (quietly unless ``verbose``: see
    :func:`quiet_model_logs`)."""
    with quiet_model_logs(verbose):
        model = build_uninitialised(config, cfg_options)
        if not checkpoint:
            model.init_weights()
    if checkpoint:
        load_checkpoint(model, checkpoint, map_location='cpu')
    return model
