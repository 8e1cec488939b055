"""CPU reproduction of the HyperSparse comparison on scikit-learn's digits.

Trains the small CNN of ``configs/art/smallcnn_digits.py`` densely and with
ART + HyperSparse, ART + L1, ART + L2, one-shot global magnitude pruning and
GMP at the given sparsities (all runs: the same total number of epochs, the
same optimizer and seeds), tests every final model on the held-out split and
writes ``results.json``, ``results.md`` and ``results.png``.

Usage:
    python projects/hypersparse/run_digits_comparison.py \
        [--sparsities 0.9 0.98 0.995] [--seeds 0 1 2] \
        [--methods dense art_hs art_l1 art_l2 oneshot gmp] \
        [--work-dir work_dirs/hypersparse_digits] \
        [--out-dir projects/hypersparse/results] [--jobs 2]

Runs that already have a result in ``<work-dir>/runs/*.json`` are skipped,
so an interrupted comparison continues where it stopped.
"""
import argparse
import json
import os
import os.path as osp
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Dict, List, Optional

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = {
    'dense': 'configs/art/smallcnn_digits.py',
    'art_hs': 'configs/art/art_hypersparse_smallcnn_digits.py',
    'art_l1': 'configs/art/art_l1_smallcnn_digits.py',
    'art_l2': 'configs/art/art_l2_smallcnn_digits.py',
    'oneshot': 'configs/art/oneshot_smallcnn_digits.py',
    'gmp': 'configs/art/gmp_smallcnn_digits.py',
}
LABELS = {
    'dense': 'dense',
    'art_hs': 'ART + HyperSparse',
    'art_l1': 'ART + L1',
    'art_l2': 'ART + L2',
    'oneshot': 'one-shot magnitude + FT',
    'gmp': 'GMP (cubic)',
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--sparsities', type=float, nargs='+', default=[0.9, 0.98, 0.995])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument(
        '--methods', nargs='+', default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument('--work-dir', default='work_dirs/hypersparse_digits')
    parser.add_argument('--out-dir', default='projects/hypersparse/results')
    parser.add_argument(
        '--jobs', type=int, default=1, help='runs in parallel (processes)')
    parser.add_argument(
        '--threads', type=int, default=1, help='torch threads per run')
    parser.add_argument(
        '--report-only',
        action='store_true',
        help='rebuild results.md and results.png from <out-dir>/results.json '
        '(no training)')
    return parser.parse_args()


def run_one(method: str, sparsity: Optional[float], seed: int, work_dir: str,
            threads: int) -> Dict:
    """Train and test one configuration in this process."""
    import torch
    from mmengine.config import Config
    from mmengine.runner import Runner

    import mmsparse  # noqa: F401
    torch.set_num_threads(threads)
    cfg = Config.fromfile(osp.join(ROOT, CONFIGS[method]))
    tag = method if sparsity is None else f'{method}_s{sparsity:g}'
    cfg.work_dir = osp.join(work_dir, f'{tag}_seed{seed}')
    cfg.experiment_name = f'{tag}_seed{seed}'
    cfg.randomness = dict(seed=seed, deterministic=False)
    cfg.default_hooks.logger.interval = 100
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=cfg.train_cfg.max_epochs)
    if sparsity is not None:
        cfg.custom_hooks[0].target_sparsity = sparsity
    start = time.time()
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    result = dict(
        method=method,
        sparsity=sparsity,
        seed=seed,
        test_accuracy=float(metrics['accuracy/top1']),
        epochs=cfg.train_cfg.max_epochs,
        seconds=round(time.time() - start, 1))
    hook = runner.hooks[[type(h).__name__ for h in runner.hooks].index(
        cfg.custom_hooks[0].type)] if sparsity is not None else None
    if hook is not None:
        result['final_sparsity'] = hook.sparsity
        result['switch_epoch'] = hook.switch_unit
        info = getattr(hook, 'switch_info', None)
        if info:
            result['switch_reason'] = info['reason']
            result['art_steps'] = len(hook.history)
    return result


def _job(args):
    method, sparsity, seed, work_dir, threads = args
    path = osp.join(work_dir, 'runs', f'{method}_{sparsity}_{seed}.json')
    if osp.exists(path):
        with open(path) as f:
            return json.load(f)
    result = run_one(method, sparsity, seed, work_dir, threads)
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(result, f)
    print(f'[done] {result}', flush=True)
    return result


def summarize(results: List[Dict], methods: List[str],
              sparsities: List[float]) -> str:
    import numpy as np

    def cell(values):
        if not values:
            return '–'
        if len(values) == 1:
            return f'{values[0]:.2f}'
        return f'{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}'

    dense = [r['test_accuracy'] for r in results if r['method'] == 'dense']
    seeds = sorted({r['seed'] for r in results})
    epochs = sorted({r['epochs'] for r in results})
    lines = [
        f'Test accuracy (%) on the 360 held-out digits, mean ± sample std '
        f'(ddof 1) over '
        f'seeds {seeds}, {epochs[0]} epochs for every run. Dense: '
        f'{cell(dense)}.', '',
        '| method | ' + ' | '.join(f'{100 * s:g} %' for s in sparsities) +
        ' |', '|---|' + '---:|' * len(sparsities)
    ]
    for method in methods:
        if method == 'dense':
            continue
        row = []
        for s in sparsities:
            vals = [
                r['test_accuracy'] for r in results
                if r['method'] == method and r['sparsity'] == s
            ]
            row.append(cell(vals))
        lines.append(f'| {LABELS[method]} | ' + ' | '.join(row) + ' |')
    art = [r for r in results if r['method'].startswith('art')]
    if art:
        lines += [
            '', 'ART switch to fine-tuning (epoch, reason) per run: ' +
            '; '.join(f"{r['method']}@{100 * r['sparsity']:g}% seed "
                      f"{r['seed']}: {r['switch_epoch']} "
                      f"({r['switch_reason']})" for r in sorted(
                          art, key=lambda r: (r['method'], r['sparsity'],
                                              r['seed'])))
        ]
    return '\n'.join(lines) + '\n'


def main():
    args = parse_args()
    os.chdir(ROOT)
    if args.report_only:
        with open(osp.join(args.out_dir, 'results.json')) as f:
            results = json.load(f)
        write_report(results, args)
        return
    jobs = []
    for seed in args.seeds:
        if 'dense' in args.methods:
            jobs.append(('dense', None, seed, args.work_dir, args.threads))
        for sparsity in args.sparsities:
            for method in args.methods:
                if method != 'dense':
                    jobs.append(
                        (method, sparsity, seed, args.work_dir, args.threads))
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            results = list(pool.map(_job, jobs))
    else:
        results = [_job(job) for job in jobs]

    os.makedirs(args.out_dir, exist_ok=True)
    with open(osp.join(args.out_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1)
    write_report(results, args)


def write_report(results: List[Dict], args) -> None:
    """``results.md`` and ``results.png`` in ``args.out_dir``."""
    from mmsparse.utils.pruning_plots import plot_comparison
    table = summarize(results, args.methods, args.sparsities)
    with open(osp.join(args.out_dir, 'results.md'), 'w') as f:
        f.write(table)
    by_method = {}
    for r in results:
        if r['method'] != 'dense':
            by_method.setdefault(LABELS[r['method']], {}).setdefault(
                r['sparsity'], []).append(r['test_accuracy'])
    plot_comparison(
        by_method,
        osp.join(args.out_dir, 'results.png'),
        dense=[r['test_accuracy'] for r in results if r['method'] == 'dense'],
        title='digits, SmallConvNet (93.7k prunable weights), 60 epochs each')
    print(table)


if __name__ == '__main__':
    main()
