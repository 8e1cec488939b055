"""Do cheap probes give P3B the same block budgets as the reference ones?

    python tools/analysis_tools/p3b_probe_agreement.py \
        [--config configs/p3b/toy/p3b_deit-toy_digits-transfer.py] \
        [--epochs 15 --schedule 2 6 12] [--window 5] [--fraction 0.25] \
        [--work-dir work_dirs/p3b_probe_agreement]

One pruning run (``P3BHook`` with the reference probes driving the pruning)
in which shadow probe banks of other designs train on exactly the same
features and targets (:class:`mmsparse.p3b.agreement.ShadowP3BPruner`).
At each mask update every shadow turns its own block benefits into block
keep ratios the way P3B does (same kept parameters, same budget solve, its
own EMA). Reported per update and shadow: max and mean |keep ratio -
reference keep ratio| over the sub-blocks, and the Spearman rank
correlation of the block benefits (cls, patch) with the reference's. The
shadow 'reference, seed 1' (the reference design with another
initialisation) is the noise floor: how much the reference budgets depend
on the probes' initialisation alone.

The toy transfer config starts from the source checkpoint of
``deit-toy_digits-source.py``; without it (``--source-checkpoint`` missing)
the backbone is trained from scratch and the script says so. Writes
``agreement.json`` and ``agreement.md`` to the work dir.
"""
import argparse
import functools
import os.path as osp
import statistics

from mmengine.config import Config
from mmengine.runner import Runner

import mmsparse  # noqa: F401
import mmsparse.engine.hooks.p3b_hook as p3b_hook_module
from mmsparse.p3b.agreement import ShadowP3BPruner
from mmsparse.utils.benchmark import format_table, write_json


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--config', default='configs/p3b/toy/p3b_deit-toy_digits-transfer.py')
    parser.add_argument('--work-dir', default='work_dirs/p3b_probe_agreement')
    parser.add_argument('--source-checkpoint', default=None,
                        help='default: the config\'s source_checkpoint')
    parser.add_argument('--epochs', type=int, default=15)
    parser.add_argument('--schedule', type=int, nargs=3, default=[2, 6, 12],
                        metavar=('START', 'SPARSE', 'FINAL'),
                        help='prune_start / prune_sparse / prune_finalize '
                        '(epochs)')
    parser.add_argument('--width', type=int, default=32)
    parser.add_argument('--fraction', type=float, default=0.25)
    parser.add_argument('--window', type=int, default=5,
                        help='probe window of the windowed shadow '
                        '(iterations before each update)')
    parser.add_argument('--tolerance', type=float, default=0.1,
                        help='max |keep ratio difference| called agreeing')
    return parser.parse_args()


def shadows(args) -> dict:
    cheap = dict(probe='cheap', probe_width=args.width)
    return {
        'reference, seed 1': dict(probe='reference', seed=1),
        'cheap': cheap,
        f'cheap, subset {args.fraction:g}': dict(
            cheap, probe_fraction=args.fraction),
        f'cheap, window {args.window}': dict(cheap,
                                             probe_window=args.window),
        f'cheap, subset {args.fraction:g} + window {args.window}': dict(
            cheap, probe_fraction=args.fraction, probe_window=args.window),
    }


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    cfg.work_dir = args.work_dir
    cfg.train_cfg.max_epochs = args.epochs
    cfg.train_cfg.val_interval = args.epochs
    ckpt = args.source_checkpoint or cfg.get('source_checkpoint')
    note = f'backbone from {ckpt}'
    if not ckpt or not osp.isfile(ckpt):
        cfg.model.backbone.init_cfg = None
        note = (f'no source checkpoint ({ckpt}): backbone trained from '
                'scratch')
    elif cfg.model.backbone.get('init_cfg'):
        cfg.model.backbone.init_cfg.checkpoint = ckpt
    print(note)
    hook = next(h for h in cfg.custom_hooks if h['type'] == 'P3BHook')
    hook.update(prune_start=args.schedule[0], prune_sparse=args.schedule[1],
                prune_finalize=args.schedule[2], probe='reference',
                probe_window=None)
    p3b_hook_module.P3BPruner = functools.partial(ShadowP3BPruner,
                                                  shadows=shadows(args))
    runner = Runner.from_cfg(cfg)
    runner.train()
    pruner = next(h for h in runner.hooks
                  if isinstance(h, p3b_hook_module.P3BHook)).pruner
    rows = []
    for rec in pruner.agreement:
        for name, res in rec['shadows'].items():
            rows.append(dict(step=rec['step'] + 1, shadow=name,
                             max_diff=res['max_abs_keep_diff'],
                             mean_diff=res['mean_abs_keep_diff'],
                             rho_cls=res['spearman_benefit_cls'],
                             rho_patch=res['spearman_benefit_patch'],
                             rho_importance=res['spearman_importance']))
    summary = []
    for name in shadows(args):
        mine = [r for r in rows if r['shadow'] == name]
        summary.append(dict(
            shadow=name, updates=len(mine),
            max_diff=max(r['max_diff'] for r in mine),
            median_max_diff=statistics.median(r['max_diff'] for r in mine),
            within=sum(r['max_diff'] <= args.tolerance for r in mine),
            final_max_diff=mine[-1]['max_diff'],
            median_rho_cls=statistics.median(r['rho_cls'] for r in mine),
            median_rho_patch=statistics.median(r['rho_patch'] for r in mine)))
    table = format_table(
        summary, ['shadow', 'updates', 'max_diff', 'median_max_diff',
                  'within', 'final_max_diff', 'median_rho_cls',
                  'median_rho_patch'],
        ['probes (vs reference, same run)', 'updates',
         'max |keep diff| (all updates)', 'median over updates of max',
         f'updates with max <= {args.tolerance:g}', 'final update: max',
         'median Spearman (cls benefit)', 'median Spearman (patch benefit)'])
    detail = format_table(
        rows, ['step', 'shadow', 'max_diff', 'mean_diff', 'rho_cls',
               'rho_patch', 'rho_importance'],
        ['update at iter', 'probes', 'max |keep diff|', 'mean |keep diff|',
         'Spearman cls', 'Spearman patch', 'Spearman importance'])
    print(table)
    write_json(dict(note=note, args=vars(args), summary=summary,
                    updates=pruner.agreement),
               osp.join(args.work_dir, 'agreement.json'))
    with open(osp.join(args.work_dir, 'agreement.md'), 'w') as f:
        f.write(f'{note}\n\n{table}\n\n{detail}\n')


if __name__ == '__main__':
    main()
