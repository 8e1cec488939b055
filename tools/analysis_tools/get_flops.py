"""FLOPs and parameters of the whole model of a config (no timing).

    python tools/analysis_tools/get_flops.py CONFIG [--shape H W] [--frames T]
        [--checkpoint CKPT] [--cfg-options k=v ...] [--out flops.json]
        [--verbose]

What is counted depends on the model the config builds:

* video instance segmentation (a ``track_head``, e.g. the dense ViT
  Mask2Former or its P3B-slim backbone ``P3BViTPyramid``): the backbone and
  backbone + ``track_head.forward`` on a synthetic ``--frames`` clip of
  ``--shape`` (default 368x640), per frame;
* VPP (``model.backbone.type='VPPBackbone'``): a pruned frame in steady state
  (its prior from the frame before), as ``benchmark_vpp.py`` counts it: the
  backbone per pruned frame, the whole model per frame (that backbone + the
  head on a clip of pruned frames), the patches kept per block (PKR) and the
  backbone per frame of a clip run at once (frame 0 dense);
* a classifier (``ImageClassifier``, e.g. the P3B DeiT configs or a P3B
  export's ``finetune.py``): ``model(x, mode='tensor')`` on one image of
  ``--shape`` (default 224x224).

FLOPs use ``mmengine.analysis`` (fvcore convention, one multiply-add = 1
FLOP) through :func:`mmsparse.utils.benchmark.count_flops`, which also counts
fused attention. Operators without a counter are listed. Pre-trained
``init_cfg`` weights are not loaded (no downloads); ``--checkpoint`` loads a
checkpoint, which matters only where weights decide what runs (VPP's
selectors choose the kept patches, not how many).
"""
import argparse
import os.path as osp

import torch
from mmengine.config import Config, DictAction

from mmsparse.registry import drop_mmsparse_scope
from mmsparse.utils.benchmark import count_flops, format_table, write_json
from mmsparse.utils.vis_benchmark import build, make_track_sample, model_flops
from mmsparse.utils.vpp_benchmark import build_row, measure_row


def model_kind(cfg: Config) -> str:
    """'vpp', 'vis' or 'classifier' for the config's model."""
    model = cfg.model
    if model.get('backbone', {}).get('type') == 'VPPBackbone':
        return 'vpp'
    if 'track_head' in model:
        return 'vis'
    return 'classifier'


def build_model(config: str, checkpoint, cfg_options, verbose: bool = False):
    """The config's model without pre-trained downloads (``checkpoint`` loaded
    when given), as the benchmark tools build it."""
    if model_kind(_load_cfg(config, cfg_options)) == 'vpp':
        opts = dict(cfg_options or {})
        opts['model.backbone.backbone.init_cfg'] = None
        return build_row(config, checkpoint, opts, verbose=verbose)
    return build(config, checkpoint, cfg_options, verbose)


def _load_cfg(config: str, cfg_options) -> Config:
    cfg = drop_mmsparse_scope(Config.fromfile(config))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def get_flops(config: str, shape=None, frames: int = 2, checkpoint=None,
              cfg_options=None, verbose: bool = False) -> dict:
    """FLOPs and parameters of the model of ``config``.

    Args:
        config (str): Config file.
        shape (tuple[int, int], optional): Input height and width. Defaults
            to 368x640 for video models and 224x224 for classifiers.
        frames (int): Clip length of video models (>= 2). Defaults to 2.
        checkpoint (str, optional): Checkpoint to load. Defaults to None.
        cfg_options (dict, optional): Config overrides. Defaults to None.
        verbose (bool): Keep mmengine's INFO logs of the build. Defaults to
            False.

    Returns:
        dict: One row (GFLOPs, millions of parameters, ``uncounted_ops``).
    """
    cfg = _load_cfg(config, cfg_options)
    kind = model_kind(cfg)
    if shape is None:
        shape = (224, 224) if kind == 'classifier' else (368, 640)
    h, w = shape
    if kind != 'classifier' and (h % 16 or w % 16):
        raise ValueError(f'--shape {h} {w}: both must be multiples of the patch size 16 for a '
                         'video model (368x640 = a 23x40 grid, as benchmark_vpp.py)')
    model = build_model(config, checkpoint, cfg_options, verbose)
    model.eval()
    torch.manual_seed(0)
    row = dict(model=osp.splitext(osp.basename(config))[0], kind=kind, input=f'{h}x{w}')
    if kind == 'classifier':
        x = torch.randn(1, 3, h, w)
        flops = count_flops(model, x, fn=lambda t: model(t, mode='tensor'))
        row.update(model_params_M=flops['params'] / 1e6,
                   model_GFLOPs_per_frame=flops['flops'] / 1e9,
                   uncounted_ops=flops['uncounted'])
        return row
    clip = torch.randn(frames, 3, h, w)
    params = dict(backbone_params_M=sum(p.numel() for p in model.backbone.parameters()) / 1e6,
                  model_params_M=sum(p.numel() for p in model.parameters()) / 1e6)
    row.update(frames=frames, **params)
    if kind == 'vis':
        bb, whole = model_flops(model, clip)
        row.update(backbone_GFLOPs_per_frame=bb['flops'] / 1e9 / frames,
                   model_GFLOPs_per_frame=whole['flops'] / 1e9 / frames,
                   patch_keep_ratio=1.0,
                   uncounted_ops=sorted(set(bb['uncounted']) | set(whole['uncounted'])))
        return row
    vpp, _, _ = measure_row(model, clip, make_track_sample, h, w)
    row.update(schedule=vpp['schedule'],
               backbone_GFLOPs_per_frame=vpp['backbone_GFLOPs'],
               model_GFLOPs_per_frame=vpp['model_GFLOPs'],
               patch_keep_ratio=vpp['frame_pkr'],
               patches_per_block=vpp['patches_per_block'],
               offline_backbone_GFLOPs_per_frame=vpp['offline_GFLOPs_per_frame'],
               uncounted_ops=vpp['uncounted_ops'])
    return row


COLUMNS = [('model', 'model'), ('input', 'input'), ('model_params_M', 'params (M)'),
           ('backbone_GFLOPs_per_frame', 'backbone GFLOPs/frame'),
           ('model_GFLOPs_per_frame', 'model GFLOPs/frame'),
           ('patch_keep_ratio', 'patch keep ratio')]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--shape', type=int, nargs=2, default=None, metavar=('H', 'W'),
                        help='input size (default 368 640 for video models, 224 224 '
                        'for classifiers)')
    parser.add_argument('--frames', type=int, default=2,
                        help='clip length of video models (>= 2)')
    parser.add_argument('--checkpoint', default=None)
    parser.add_argument('--out', default=None, help='also write the row as JSON')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    parser.add_argument('--verbose', action='store_true',
                        help="keep mmengine's INFO logs while building")
    args = parser.parse_args(argv)
    if args.frames < 2:
        parser.error('--frames must be >= 2 (VPP prunes from the second frame on)')
    try:
        row = get_flops(args.config, args.shape, args.frames, args.checkpoint,
                        args.cfg_options, args.verbose)
    except ValueError as e:
        parser.error(str(e))
    cols = [(k, name) for k, name in COLUMNS if k in row]
    print(format_table([row], [k for k, _ in cols], [name for _, name in cols]))
    if row.get('patches_per_block'):
        print(f"VPP schedule {row['schedule']}: patches per block of a pruned frame "
              f"{row['patches_per_block']}; backbone of a clip run at once "
              f"{row['offline_backbone_GFLOPs_per_frame']:.3f} GFLOPs/frame (frame 0 dense)")
    if row['uncounted_ops']:
        print(f"FLOPs exclude operators without a counter: {row['uncounted_ops']}")
    if args.out:
        print(f'wrote {write_json(row, args.out)}')
    return row


if __name__ == '__main__':
    main()
