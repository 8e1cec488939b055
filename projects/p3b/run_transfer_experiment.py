"""P3B transfer experiment on this CPU: prune while adapting to a new task.

    python projects/p3b/run_transfer_experiment.py [--work-dir DIR]
        [--keep-ratios 0.5 0.25] [--seeds 0 1 2] [--threads 1]

1. Source task: a tiny DeiT (4 layers, 64 dims) trained on digits 0-4
   (scikit-learn's bundled 8x8 digits, upsampled to 16x16, grey).
2. Target task: digits 5-9 in a shifted domain (rotated, inverted, tinted),
   started from the source backbone with a new head.
3. At equal parameter budget, with the same gates, schedule and soft-to-hard
   masks, compare
   - P3B: block budgets from the block benefit + Taylor ranking,
   - uniform: the same keep ratio for every block + Taylor ranking,
   - magnitude: uniform keep ratio + weight-norm ranking,
   plus the dense fine-tuned model. Each pruning run ends with the hard
   masks (= the slim model, exported by ``P3BHook``), which is then
   fine-tuned with the ``finetune.py`` config the hook wrote.

Writes ``results.json``, ``results.md`` and ``accuracy.png`` into the work
dir (and the hook's plots under each run's ``p3b/``). Every stage is an
mmengine ``Runner`` built from the configs in ``configs/p3b/toy``.
"""
import argparse
import json
import os
import os.path as osp
import shutil
import statistics
import time

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner, load_checkpoint

from mmsparse.registry import MODELS

CONFIG_DIR = osp.join(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))), 'configs', 'p3b', 'toy')
METHODS = {
    'P3B': 'p3b_deit-toy_digits-transfer.py',
    'uniform': 'uniform_deit-toy_digits-transfer.py',
    'magnitude': 'magnitude_deit-toy_digits-transfer.py',
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/p3b_digits')
    parser.add_argument('--keep-ratios', type=float, nargs='+',
                        default=[0.5, 0.25])
    parser.add_argument('--methods', nargs='+', default=list(METHODS),
                        choices=list(METHODS))
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--prune-epochs', type=int, default=30)
    parser.add_argument('--finetune-epochs', type=int, default=10)
    parser.add_argument('--finetune-lr', type=float, default=3e-4)
    parser.add_argument('--source-epochs', type=int, default=30)
    parser.add_argument('--threads', type=int, default=1)
    return parser.parse_args()


def run(cfg: Config, work_dir: str, name: str, train: bool = True) -> dict:
    """Train (optionally) and test one config; returns the test metrics."""
    cfg.work_dir = work_dir
    cfg.experiment_name = name
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=50)
    runner = Runner.from_cfg(cfg)
    if train:
        runner.train()
    metrics = runner.test()
    return {k.split('/')[-1]: float(v) for k, v in metrics.items()}


def source_stage(args) -> str:
    work_dir = osp.join(args.work_dir, 'source')
    ckpt = osp.join(work_dir, f'epoch_{args.source_epochs}.pth')
    if not osp.isfile(ckpt):
        cfg = Config.fromfile(osp.join(CONFIG_DIR,
                                       'deit-toy_digits-source.py'))
        cfg.train_cfg.max_epochs = args.source_epochs
        cfg.default_hooks.checkpoint = dict(
            type='CheckpointHook', interval=args.source_epochs)
        metrics = run(cfg, work_dir, 'source')
        with open(osp.join(work_dir, 'metrics.json'), 'w') as f:
            json.dump(metrics, f)
    return ckpt


def target_cfg(file: str, source: str, seed: int, epochs: int) -> Config:
    cfg = Config.fromfile(osp.join(CONFIG_DIR, file))
    cfg.model.backbone.init_cfg.checkpoint = source
    cfg.randomness = dict(seed=seed)
    cfg.train_cfg.max_epochs = epochs
    cfg.train_cfg.val_interval = epochs
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook',
                                        interval=epochs, max_keep_ckpts=1)
    return cfg


def finetune(args, cfg: Config, work_dir: str, name: str,
             seed: int) -> float:
    """The shared fine-tune recipe: AdamW, cosine from ``finetune_lr``."""
    key = f'finetune_lr{args.finetune_lr:g}_e{args.finetune_epochs}.json'
    return cached(osp.join(osp.dirname(work_dir), key),
                  lambda: _finetune(args, cfg, work_dir, name, seed))


def _finetune(args, cfg, work_dir, name, seed):
    cfg.randomness = dict(seed=seed)
    cfg.train_cfg.max_epochs = args.finetune_epochs
    cfg.train_cfg.val_interval = args.finetune_epochs
    cfg.optim_wrapper.optimizer.lr = args.finetune_lr
    cfg.param_scheduler = [
        dict(type='CosineAnnealingLR', by_epoch=True, begin=0,
             end=args.finetune_epochs, eta_min=0.0)
    ]
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=args.finetune_epochs)
    return run(cfg, work_dir, name).get('top1')


def cached(path: str, compute):
    """Run ``compute()`` unless ``path`` holds its json result."""
    if osp.isfile(path):
        with open(path) as f:
            return json.load(f)
    result = compute()
    with open(path, 'w') as f:
        json.dump(result, f)
    return result


def prune_stage(args, method: str, keep: float, seed: int,
                source: str) -> dict:
    name = f'{method}_kr{keep:g}_s{seed}'
    work_dir = osp.join(args.work_dir, name)
    export = osp.join(work_dir, 'p3b')

    def prune():
        shutil.rmtree(work_dir, ignore_errors=True)
        cfg = target_cfg(METHODS[method], source, seed, args.prune_epochs)
        cfg.custom_hooks[0].update(keep_ratio=keep,
                                   prune_finalize=args.prune_epochs,
                                   seed=seed)
        start = time.time()
        acc = run(cfg, work_dir, name).get('top1')
        # rebuild the slim model from the exported config + checkpoint
        slim_cfg = Config.fromfile(osp.join(export, 'slim_model.py'))
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            slim = MODELS.build(slim_cfg.model)
        ckpt = load_checkpoint(slim, osp.join(export, 'slim_model.pth'),
                               strict=True, logger='silent')
        with open(osp.join(export, 'history.json')) as f:
            history = json.load(f)['history']
        return dict(params=sum(p.numel() for p in slim.parameters()),
                    global_keep=history[-1]['global_keep'],
                    block_keep=history[-1]['block_keep'], acc_pruned=acc,
                    slim_arch=ckpt['meta']['p3b_slim_arch'],
                    prune_s=time.time() - start)

    row = dict(method=method, keep_ratio=keep, seed=seed)
    row.update(cached(osp.join(work_dir, 'prune_result.json'), prune))
    ft_cfg = Config.fromfile(osp.join(export, 'finetune.py'))
    row['acc_finetuned'] = finetune(args, ft_cfg,
                                    osp.join(work_dir, 'finetune'),
                                    name + '_ft', seed)
    return row


def dense_stage(args, seed: int, source: str) -> dict:
    """Dense transfer for the same epochs, then the same fine-tune."""
    name = f'dense_s{seed}'
    work_dir = osp.join(args.work_dir, name)

    def train():
        shutil.rmtree(work_dir, ignore_errors=True)
        cfg = target_cfg('deit-toy_digits-transfer_dense.py', source, seed,
                         args.prune_epochs)
        return dict(acc_pruned=run(cfg, work_dir, name).get('top1'))

    row = dict(method='dense', keep_ratio=1.0, seed=seed, params=None)
    row.update(cached(osp.join(work_dir, 'dense_result.json'), train))
    cfg = target_cfg('deit-toy_digits-transfer_dense.py', source, seed,
                     args.finetune_epochs)
    cfg.model.backbone.init_cfg = None
    cfg.load_from = osp.join(work_dir, f'epoch_{args.prune_epochs}.pth')
    row['acc_finetuned'] = finetune(args, cfg, osp.join(work_dir, 'finetune'),
                                    name + '_ft', seed)
    return row


def _mean_std(vals):
    if not vals:
        return None, None
    return statistics.fmean(vals), (statistics.stdev(vals)
                                    if len(vals) > 1 else 0.0)


def summarize(rows, dense_params):
    """Mean ± std per (method, keep ratio), and the paired difference to
    the uniform baseline of the same seed (same data order and head init:
    most of the seed-to-seed spread cancels)."""
    groups = {}
    for r in rows:
        groups.setdefault((r['method'], r['keep_ratio']), []).append(r)
    out = []
    for (method, keep), rs in sorted(groups.items(),
                                     key=lambda kv: (-kv[0][1], kv[0][0])):
        base = {r['seed']: r for r in groups.get(('uniform', keep), [])}
        entry = dict(method=method, keep_ratio=keep, seeds=len(rs),
                     params=rs[0]['params'] or dense_params)
        entry['param_ratio'] = entry['params'] / dense_params
        for key in ('acc_pruned', 'acc_finetuned'):
            entry[key] = _mean_std([r[key] for r in rs
                                    if r[key] is not None])
            diffs = [r[key] - base[r['seed']][key] for r in rs
                     if method != 'uniform' and r['seed'] in base
                     and r[key] is not None]
            entry[key + '_vs_uniform'] = _mean_std(diffs)
        out.append(entry)
    return out


def fmt(pair, sign=False):
    mean, std = pair
    if mean is None:
        return '-'
    return f'{mean:+.2f} ± {std:.2f}' if sign else f'{mean:.2f} ± {std:.2f}'


def write_outputs(args, rows, summary, dense_params):
    lines = [
        '| method | keep ratio (goal) | params (slim) | params / dense | '
        f'top-1 after the {args.prune_epochs}-epoch transfer run (pruned: '
        'hard masks = slim model) | vs uniform, same seed | top-1 after '
        f'fine-tune (+{args.finetune_epochs} epochs) | vs uniform, same seed |',
        '|---|---|---|---|---|---|---|---|'
    ]
    for s in summary:
        lines.append(
            f'| {s["method"]} | {s["keep_ratio"]:g} | {s["params"]:,} | '
            f'{s["param_ratio"]:.3f} | {fmt(s["acc_pruned"])} | '
            f'{fmt(s["acc_pruned_vs_uniform"], True)} | '
            f'{fmt(s["acc_finetuned"])} | '
            f'{fmt(s["acc_finetuned_vs_uniform"], True)} |')
    table = '\n'.join(lines)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(table + '\n\nmean ± std over seeds ' +
                ', '.join(map(str, args.seeds)) + f'; dense model: '
                f'{dense_params:,} parameters.\n')
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(dict(args=vars(args), dense_params=dense_params,
                       summary=summary, runs=rows), f, indent=1)
    plot(args, summary)
    print(table)


def plot(args, summary):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    dense = [s for s in summary if s['method'] == 'dense']
    for ax, key, title in ((axes[0], 'acc_pruned', 'after the transfer run'),
                           (axes[1], 'acc_finetuned', 'after fine-tune')):
        for method, color in (('P3B', 'tab:red'), ('uniform', 'tab:blue'),
                              ('magnitude', 'tab:green')):
            pts = [s for s in summary if s['method'] == method
                   and s[key][0] is not None]
            if pts:
                ax.errorbar([s['param_ratio'] for s in pts],
                            [s[key][0] for s in pts],
                            yerr=[s[key][1] for s in pts], fmt='o-',
                            color=color, label=method, capsize=3)
        if dense and dense[0][key][0] is not None:
            ax.axhline(dense[0][key][0], color='k', ls='--', label='dense')
        ax.set_xlabel('kept parameters / dense')
        ax.set_title(f'target task, {title}')
        ax.grid(alpha=0.3)
    axes[0].set_ylabel('top-1 (%)')
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(osp.join(args.work_dir, 'accuracy.png'), dpi=110)


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.work_dir, exist_ok=True)
    args.work_dir = osp.abspath(args.work_dir)
    start = time.time()
    source = source_stage(args)
    dense_params = sum(
        v.numel() for v in torch.load(source, map_location='cpu',
                                      weights_only=False)
        ['state_dict'].values())
    rows = [dense_stage(args, s, source) for s in args.seeds]
    for keep in args.keep_ratios:
        for method in args.methods:
            for seed in args.seeds:
                rows.append(prune_stage(args, method, keep, seed, source))
                print(f'[{time.time() - start:.0f}s] {rows[-1]["method"]} '
                      f'keep {keep} seed {seed}: '
                      f'pruned {rows[-1]["acc_pruned"]}, '
                      f'fine-tuned {rows[-1]["acc_finetuned"]}')
    summary = summarize(rows, dense_params)
    write_outputs(args, rows, summary, dense_params)
    print(f'total {time.time() - start:.0f} s')


if __name__ == '__main__':
    main()
