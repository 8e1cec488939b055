"""The known-bad baseline of P3B: a slim ViT with one keep ratio for every block.

    python projects/composed/uniform_slim_export.py CLS_CONFIG CHECKPOINT
        --out DIR [--keep 0.5] [--score magnitude] [--width-multiple 8]
        [--seed 0]

P3B decides *how much* of every block to keep from the block's measured
benefit. The baseline it must beat keeps the same fraction of the parameters
with a *uniform* budget (every block to the same keep ratio) and the
elements ranked by weight norm (``--score magnitude``) or at random, cut once
from the trained dense classifier (``CHECKPOINT`` of ``CLS_CONFIG``): P3B's
keep-ratio solve with ``block_budget='uniform'``
(:func:`mmsparse.p3b.untrained_pruner`). Writes what ``P3BHook`` writes, so
every consumer of a P3B export takes it unchanged: ``DIR/slim_model.{pth,py}``
(``P3BViTPyramid(export=DIR)``) and ``DIR/finetune.py`` (fine-tune the slim
classifier with ``tools/train.py``; give it the same epochs as the P3B run
plus its fine-tuning, so both slim models see the same training budget).
"""
import argparse
import json
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def make_uniform_export(config, checkpoint, out, keep=0.5, score='magnitude',
                        width_multiple=8, seed=0):
    """Write the uniform slim export of ``checkpoint``; returns its summary
    (``slim_arch``, achieved ``keep_ratio``)."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    import mmsparse  # noqa: F401
    from mmsparse.models.backbones.p3b_export import write_p3b_export
    from mmsparse.p3b import finetune_config_text, untrained_pruner
    from mmsparse.registry import MODELS
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model_cfg = cfg.model.to_dict()
    model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu')
    pruner = untrained_pruner(model, keep, score, seed=seed,
                              width_multiple=width_multiple)
    slim_arch = pruner.slim_arch()
    state = pruner.slim_state_dict(model)
    achieved = pruner.global_keep_ratio()
    pruner.remove()
    backbone = dict(model_cfg['backbone'], type='SlimVisionTransformer',
                    slim_arch=slim_arch, init_cfg=None)
    model_cfg['backbone'] = backbone
    write_p3b_export(out, model_cfg, state, slim_arch, keep_ratio=achieved,
                     made_by=f'uniform_slim_export.py ({score} scores, uniform '
                     f'block budget, cut once from {checkpoint})')
    with open(osp.join(out, 'finetune.py'), 'w') as f:
        f.write('# Uniform-budget baseline (projects/composed/'
                'uniform_slim_export.py), written\n# in the format of '
                'P3BHook\'s finetune.py.\n')
        f.write(finetune_config_text(
            config, osp.dirname(osp.abspath(out)),
            osp.join(out, 'slim_model.pth'), [], backbone))
    summary = dict(slim_arch=slim_arch, keep_ratio=achieved, score=score,
                   width_multiple=width_multiple, source=checkpoint)
    with open(osp.join(out, 'uniform_slim.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='the dense classifier config')
    parser.add_argument('checkpoint', help='its trained weights')
    parser.add_argument('--out', required=True, help='export folder')
    parser.add_argument('--keep', type=float, default=0.5,
                        help='fraction of the classifier parameters kept')
    parser.add_argument('--score', choices=['magnitude', 'random'],
                        default='magnitude')
    parser.add_argument('--width-multiple', type=int, default=8)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if not 0 < args.keep < 1:
        parser.error(f'--keep must be in (0, 1), got {args.keep}')
    if args.width_multiple < 1:
        parser.error(f'--width-multiple must be >= 1, got {args.width_multiple}')
    sys.path.insert(0, ROOT)
    summary = make_uniform_export(args.config, args.checkpoint, args.out,
                                  args.keep, args.score, args.width_multiple,
                                  args.seed)
    print(f"uniform slim export in {args.out}: keep {summary['keep_ratio']:.3f} "
          f"of the parameters; widths per block {summary['slim_arch']}")


if __name__ == '__main__':
    main()
