"""Export an mmsparse model to ONNX and check it in onnxruntime.

    python tools/deployment/pytorch2onnx.py CONFIG [CHECKPOINT]
        --out model.onnx [--part model|backbone] [--shape H W]
        [--opset 17] [--tolerance 1e-4] [--threads N]
        [--fold-slim in out] [--cfg-options k=v ...]

CONFIG is a config file, or a P3B export (the folder ``<work_dir>/p3b``
or its ``slim_model.py``; the checkpoint ``slim_model.pth`` beside it is
then taken when CHECKPOINT is not given). CHECKPOINT may be a
``sparse://`` file (``tools/model_converters/export_sparse_checkpoint.py``).

* ``--part model``: a classifier (mmpretrain ``ImageClassifier``, dense or
  P3B-slim), image -> logits. The file holds the kept parameters only, so
  its size follows the slim widths.
* ``--part backbone``: ``model.backbone`` (dense ``ViTPyramid`` /
  ``VisionTransformer`` or the slim ones), image -> its feature tuple. A
  ``VPPBackbone`` is exported for streaming as two graphs with static
  shapes: ``OUT`` (one frame and the previous frame's prior in, the
  features and the next prior out) and ``OUT_first.onnx`` (the dense first
  frame of a video: features and the prior out).

``--fold-slim`` (P3B-slim models) folds the kept-dimension indices of the
slim blocks into their weights (``out``: the last Linear of a sub-block
writes all residual dimensions, zero on the dropped ones, instead of a
``Pad`` + ``Gather`` onto the kept ones; ``in``: the norm and the first
Linear read all of them instead of a ``Gather``): fewer nodes, more
multiply-adds by zero (:func:`mmsparse.deploy.fold_slim_indices`). The
check compares with the unfolded model. Default: no fold.

Every file is run in onnxruntime (CPU, fp32) on the same random input as
PyTorch; the largest absolute difference is printed and the tool exits with
status 1 when it exceeds ``--tolerance`` (status 2, with one line naming the
layer or input, for a model it cannot export). Needs the ``deploy`` extra
(``pip install -e .[deploy]``: onnx, onnxruntime).
"""
import argparse
import os
import os.path as osp
import sys

import torch


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file or P3B export')
    parser.add_argument('checkpoint', nargs='?', default=None,
                        help='checkpoint (optional: random weights)')
    parser.add_argument('--out', required=True, help='output .onnx file')
    parser.add_argument('--part', choices=['model', 'backbone'],
                        default='model')
    parser.add_argument('--shape', type=int, nargs=2, default=None,
                        metavar=('H', 'W'),
                        help="input size (default: the backbone's img_size)")
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--tolerance', type=float, default=1e-4)
    parser.add_argument('--threads', type=int, default=None,
                        help='onnxruntime / torch threads')
    parser.add_argument('--fold-slim', nargs='+', choices=['in', 'out'],
                        default=[],
                        help='fold the slim blocks\' kept indices into '
                        'their weights (P3B-slim)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        default=None)
    return parser.parse_args(argv)


def resolve(config: str, checkpoint):
    """Config and checkpoint paths, a P3B export folder resolved."""
    if osp.isdir(config) or osp.basename(config) == 'slim_model.py':
        from mmsparse.models.backbones.p3b_export import export_paths
        paths = export_paths(config)
        if paths['config'] is None:
            raise FileNotFoundError(f'{config}: the P3B export has no '
                                    'slim_model.py')
        return paths['config'], checkpoint or paths['checkpoint']
    return config, checkpoint


def build_model(config: str, checkpoint=None, cfg_options=None):
    """Build the config's model (eval) and load the checkpoint strictly."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mmsparse  # noqa: F401
    from mmsparse.registry import MODELS
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model = MODELS.build(cfg.model)
    if checkpoint:
        from mmengine.runner import load_checkpoint
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True,
                        logger='silent')
    return model.eval(), cfg


def default_shape(model, part):
    backbone = getattr(model, 'backbone', model)
    inner = getattr(backbone, 'backbone', backbone)  # VPPBackbone
    size = getattr(inner, 'img_size', None) or (224, 224)
    if isinstance(size, int):
        size = (size, size)
    return tuple(int(s) for s in size)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from mmsparse.deploy import UnsupportedExportError, export_model
    config, checkpoint = resolve(args.config, args.checkpoint)
    model, _ = build_model(config, checkpoint, args.cfg_options)
    shape = tuple(args.shape) if args.shape else default_shape(model,
                                                               args.part)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    try:
        result = export_model(model, args.out, shape, args.part, args.opset,
                              check=True, threads=args.threads,
                              fold_slim=args.fold_slim)
    except UnsupportedExportError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    params = sum(p.numel() for p in model.parameters())
    print(f'model: {type(model).__name__} ({params / 1e6:.3f} M parameters'
          f'), part {args.part}, input {shape[0]}x{shape[1]}' +
          (f", slim indices folded: {' '.join(args.fold_slim)}"
           if args.fold_slim else ''))
    for path in result['files']:
        print(f'{path}: {osp.getsize(path) / 2**20:.2f} MiB, inputs '
              f"{result['inputs'][path]}, max abs diff per output "
              f"{result['diffs'][path]}")
    worst = result['max_abs_diff']
    ok = worst <= args.tolerance
    print(f'max abs diff (onnxruntime vs PyTorch, fp32): {worst:.3g} '
          f"({'within' if ok else 'ABOVE'} tolerance {args.tolerance:g})")
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
