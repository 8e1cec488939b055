"""Toy YouTube-VIS comparison: dense vs VPP vs image-only vs random pruning.

    python projects/vpp/run_toy_comparison.py [--work-dir DIR]
        [--pretrain-iters 300] [--finetune-iters 150]
        [--keep-ratios 0.7 0.55 0.4] [--selectors temporal image random]
        [--threads 1]

The protocol follows the paper (dense training, then sparse fine-tuning from
the dense weights) at toy scale, with the user-facing tools only:

1. ``tools/train.py configs/toy/mask2former_vit_toy-ytvis21.py`` for
   ``--pretrain-iters`` (the dense model every variant starts from);
2. every variant is fine-tuned from that checkpoint for the same
   ``--finetune-iters``: dense (continued), and VPP with each selector
   (temporal = VPP, image-only, random) at each keep ratio, all pruning at
   block 1 of 6 with the first frame of each clip/video dense;
3. ``tools/test.py`` on the held-out videos: local AP, the achieved PKR
   and the share of object pixels whose patches were kept in the pruned
   frames (``VPPVisualizationHook``; random selection keeps about the keep
   ratio).

Writes ``comparison.md`` (AP table), ``comparison.json`` (all numbers and run
times) and ``comparison.png`` (AP vs keep ratio) into the work dir. Runs
whose final checkpoint/metrics exist are reused (delete them to rerun).
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DENSE = 'configs/toy/mask2former_vit_toy-ytvis21.py'
VPP = {
    'temporal': 'configs/toy/vpp_mask2former_vit_toy-ytvis21.py',
    'image': 'configs/toy/vpp_mask2former_vit_toy-ytvis21_image-only.py',
    'random': 'configs/toy/vpp_mask2former_vit_toy-ytvis21_random.py',
}
LABELS = dict(dense='dense', temporal='VPP (temporal prior)',
              image='image-only', random='random')
METRICS = ('segm_mAP', 'segm_mAP_50', 'segm_mAP_75')


THREADS = {}


def run(cmd, log_file):
    """Run a tool, its output into ``log_file``; returns seconds."""
    print('$ ' + ' '.join(cmd), flush=True)
    start = time.time()
    os.makedirs(osp.dirname(log_file), exist_ok=True)
    with open(log_file, 'w') as f:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                              env=dict(os.environ, **THREADS))
    if proc.returncode:
        raise RuntimeError(f'failed ({proc.returncode}), see {log_file}')
    took = time.time() - start
    print(f'  done in {took:.0f} s', flush=True)
    return took


def data_options(data_root):
    return [f'{dl}.dataset.data_root={data_root}'
            for dl in ('train_dataloader', 'val_dataloader',
                       'test_dataloader')]


def train(config, work, iters, options, load_from=None):
    ckpt = osp.join(work, f'iter_{iters}.pth')
    if osp.exists(ckpt):
        return ckpt, 0.0
    os.makedirs(work, exist_ok=True)
    opts = [f'train_cfg.max_iters={iters}',
            f'train_cfg.val_interval={iters + 1}', 'val_cfg=None',
            'val_dataloader=None', 'val_evaluator=None',
            f'default_hooks.checkpoint.interval={iters}'
            ] + [o for o in options if not o.startswith('val_')]
    if load_from:
        opts.append(f'load_from={load_from}')
    took = run([sys.executable, 'tools/train.py', config, '--work-dir', work,
                '--cfg-options'] + opts, osp.join(work, 'train_stdout.log'))
    return ckpt, took


def test(config, ckpt, work, options):
    out = osp.join(work, 'test')
    done = osp.join(out, 'metrics.json')
    if osp.exists(done):
        with open(done) as f:
            return json.load(f)
    os.makedirs(out, exist_ok=True)
    took = run([sys.executable, 'tools/test.py', config, ckpt, '--work-dir',
                out, '--cfg-options'] + options,
               osp.join(out, 'test_stdout.log'))
    files = sorted(glob.glob(osp.join(out, '*', '*.json')), key=osp.getmtime)
    with open(files[-1]) as f:
        metrics = json.load(f)
    metrics['test_seconds'] = took
    with open(done, 'w') as f:
        json.dump(metrics, f, indent=2)
    return metrics


def plot(rows, dense_ap, out_file):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for sel, marker in (('temporal', 'o'), ('image', 's'), ('random', '^')):
        mine = [r for r in rows if r['selector'] == sel]
        if not mine:
            continue
        pts = sorted((r['keep_ratio'], r['segm_mAP'] * 100) for r in mine)
        ax.plot(*zip(*pts), marker=marker, label=LABELS[sel])
        pts = sorted((r['keep_ratio'], r['fg_recall']) for r in mine)
        ax2.plot(*zip(*pts), marker=marker, label=LABELS[sel])
    ax.axhline(dense_ap * 100, color='k', ls='--', label='dense')
    ax.set_ylabel('segm AP (held-out toy videos)')
    ax.set_title('Toy YouTube-VIS: AP vs patch keep ratio')
    ks = sorted({r['keep_ratio'] for r in rows})
    ax2.plot(ks, ks, color='grey', ls=':', label='= keep ratio (random)')
    ax2.set_ylim(0, 1.02)
    ax2.set_ylabel('object pixels whose patch was kept')
    ax2.set_title('Foreground kept in the pruned frames')
    for a in (ax, ax2):
        a.set_xlabel('keep ratio of pruned frames (from block 1 of 6)')
        a.invert_xaxis()
        a.grid(alpha=0.3)
        a.legend()
    fig.tight_layout()
    fig.savefig(out_file, dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/vpp_toy_comparison')
    parser.add_argument('--data-root', default='data/toy_ytvis21/')
    parser.add_argument('--pretrain-iters', type=int, default=300)
    parser.add_argument('--finetune-iters', type=int, default=150)
    parser.add_argument('--keep-ratios', type=float, nargs='+',
                        default=[0.7, 0.55, 0.4])
    parser.add_argument('--selectors', nargs='+', default=list(VPP),
                        choices=list(VPP))
    parser.add_argument(
        '--threads', type=int, default=1,
        help='OMP_NUM_THREADS of the runs (1 on a shared CPU: contended '
        'OpenMP threads spin and run several times slower)')
    args = parser.parse_args()
    THREADS['OMP_NUM_THREADS'] = str(args.threads)
    if args.pretrain_iters < 1 or args.finetune_iters < 1:
        parser.error('iterations must be >= 1')
    if any(not 0 < r < 1 for r in args.keep_ratios):
        parser.error('--keep-ratios must be in (0, 1)')
    work = osp.join(ROOT, args.work_dir)
    data_root = args.data_root if args.data_root.endswith('/') \
        else args.data_root + '/'
    if not osp.exists(osp.join(ROOT, data_root, 'annotations',
                               'youtube_vis_2021_heldout.json')):
        run([sys.executable, 'tools/misc/make_toy_ytvis.py', '--out',
             data_root, '--convert'], osp.join(work, 'make_data.log'))
    opts = data_options(data_root)
    start = time.time()

    pre_ckpt, pre_time = train(DENSE, osp.join(work, 'dense_pretrain'),
                               args.pretrain_iters, opts)
    runs = [('dense', None, DENSE, [])]
    for sel in args.selectors:
        for r in args.keep_ratios:
            runs.append((sel, r, VPP[sel], [f'model.backbone.keep_ratio={r}']))
    rows = []
    for sel, ratio, config, extra in runs:
        name = sel if ratio is None else f'{sel}_keep{ratio}'
        run_dir = osp.join(work, name)
        ckpt, train_time = train(config, run_dir, args.finetune_iters,
                                 opts + extra, load_from=pre_ckpt)
        metrics = test(config, ckpt, run_dir, opts + extra)
        row = dict(
            name=name, selector=sel, keep_ratio=ratio if ratio else 1.0,
            pkr=metrics.get('vpp_pkr', 1.0),
            fg_recall=metrics.get('vpp_fg_recall', 1.0),
            train_seconds=round(train_time, 1),
            test_seconds=round(metrics.get('test_seconds', 0.0), 1))
        for m in METRICS:
            row[m] = metrics[f'youtube_vis/{m}']
        rows.append(row)
        print(f'{name}: AP {row["segm_mAP"]:.3f} PKR {row["pkr"]:.3f} '
              f'object pixels kept {row["fg_recall"]:.3f}', flush=True)

    dense_ap = rows[0]['segm_mAP']
    lines = [
        f'Toy YouTube-VIS 2021 (held-out videos), ViT 6 blocks dim 192, '
        f'dense pre-training {args.pretrain_iters} iters, then '
        f'{args.finetune_iters} fine-tuning iters for every row; pruning at '
        'block 1, first frame of each video dense.', '',
        '| selection | keep ratio | PKR (test) | object pixels kept | '
        'segm AP | AP50 | AP75 | AP - dense |',
        '|---|---|---|---|---|---|---|---|'
    ]
    for r in rows:
        lines.append(
            f'| {LABELS[r["selector"]]} | {r["keep_ratio"]:.2f} | '
            f'{r["pkr"]:.3f} | {r["fg_recall"]:.3f} | '
            f'{100 * r["segm_mAP"]:.1f} | '
            f'{100 * r["segm_mAP_50"]:.1f} | {100 * r["segm_mAP_75"]:.1f} | '
            f'{100 * (r["segm_mAP"] - dense_ap):+.1f} |')
    table = '\n'.join(lines)
    with open(osp.join(work, 'comparison.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(work, 'comparison.json'), 'w') as f:
        json.dump(
            dict(rows=rows, pretrain_iters=args.pretrain_iters,
                 pretrain_seconds=round(pre_time, 1),
                 finetune_iters=args.finetune_iters,
                 total_seconds=round(time.time() - start, 1)), f, indent=2)
    plot(rows[1:], dense_ap, osp.join(work, 'comparison.png'))
    print(table)
    print(f'wrote {work}/comparison.{{md,json,png}}')


if __name__ == '__main__':
    main()
