"""The demo behind ``make demo``: toy data -> train -> evaluate -> pictures.

Runs the same commands a user runs, one after another, and times them:

1. ``tools/misc/make_toy_ytvis.py --out data/toy_ytvis21 --convert`` (raw
   YouTube-VIS 2021 layout, then the CocoVID conversion with a held-out split);
2. ``tools/misc/init_checkpoint.py`` + ``tools/test.py``: AP of the untrained
   model (the reference the trained AP must beat);
3. ``tools/train.py CONFIG --work-dir WORK_DIR``;
4. ``tools/test.py CONFIG WORK_DIR/iter_N.pth``: local AP and PNGs of the
   predicted masks over frames;

then plots the training losses and writes ``WORK_DIR/demo_summary.json``.
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
DEFAULT_CONFIG = 'configs/toy/mask2former_vit_toy-ytvis21.py'
DATA_ROOT = 'data/toy_ytvis21'


def run(cmd, log):
    print('\n$ ' + ' '.join(cmd), flush=True)
    start = time.time()
    subprocess.run(cmd, cwd=ROOT, check=True)
    took = time.time() - start
    log.append(dict(cmd=' '.join(cmd), seconds=round(took, 1)))
    print(f'[demo] done in {took:.0f} s', flush=True)
    return took


def latest_metrics(work_dir):
    """Metrics json mmengine writes after a test run: WORK/TS/TS.json."""
    files = sorted(glob.glob(osp.join(work_dir, '*', '*.json')),
                   key=osp.getmtime)
    if not files:
        raise RuntimeError(f'no metrics json under {work_dir}')
    with open(files[-1]) as f:
        return json.load(f)


def plot_losses(work_dir):
    """PNG of the training losses from mmengine's scalars.json."""
    from mmsparse.utils.plots import plot_scalar_curves
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')), key=osp.getmtime)
    if not files:
        return None
    return plot_scalar_curves(
        files[-1], osp.join(work_dir, 'train_losses.png'),
        keys=('loss', 'loss_cls', 'loss_mask', 'loss_dice'),
        title='Mask2Former (toy ViT) training losses')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--iters', type=int, default=None,
                        help='override train_cfg.max_iters')
    args = parser.parse_args()

    py = sys.executable
    work_dir = args.work_dir
    os.makedirs(osp.join(ROOT, work_dir), exist_ok=True)
    log = []
    start = time.time()

    ann = osp.join(ROOT, DATA_ROOT, 'annotations',
                   'youtube_vis_2021_heldout.json')
    if not osp.exists(ann):
        run([py, 'tools/misc/make_toy_ytvis.py', '--out', DATA_ROOT,
             '--convert'], log)
    else:
        print(f'[demo] toy data already in {DATA_ROOT}')

    # tools/test.py evaluates right after training: skip the config's own
    # validation at the last iteration so the demo does not evaluate twice.
    extra = ['--cfg-options', 'train_cfg.val_interval=1000000000']
    if args.iters:
        extra.append(f'train_cfg.max_iters={args.iters}')

    untrained = osp.join(work_dir, 'untrained.pth')
    run([py, 'tools/misc/init_checkpoint.py', args.config, untrained], log)
    run([py, 'tools/test.py', args.config, untrained, '--work-dir',
         osp.join(work_dir, 'test_untrained')], log)
    ap_untrained = latest_metrics(
        osp.join(ROOT, work_dir, 'test_untrained'))

    train_s = run([py, 'tools/train.py', args.config, '--work-dir', work_dir]
                  + extra, log)
    with open(osp.join(ROOT, work_dir, 'last_checkpoint')) as f:
        ckpt = f.read().strip()
    run([py, 'tools/test.py', args.config, ckpt, '--work-dir',
         osp.join(work_dir, 'test_trained')], log)
    ap_trained = latest_metrics(osp.join(ROOT, work_dir, 'test_trained'))
    loss_png = plot_losses(osp.join(ROOT, work_dir))

    pngs = sorted(glob.glob(osp.join(ROOT, work_dir, 'test_trained',
                                     'vis_predictions', '**', '*.png'),
                            recursive=True))
    summary = dict(
        config=args.config,
        total_seconds=round(time.time() - start, 1),
        train_seconds=round(train_s, 1),
        untrained=ap_untrained,
        trained=ap_trained,
        checkpoint=ckpt,
        loss_plot=loss_png,
        prediction_pngs=pngs,
        steps=log)
    out = osp.join(ROOT, work_dir, 'demo_summary.json')
    with open(out, 'w') as f:
        json.dump(summary, f, indent=2)

    key = 'youtube_vis/segm_mAP'
    print('\n' + '=' * 72)
    print(f'mmsparse demo finished in {summary["total_seconds"]:.0f} s '
          f'(training {train_s:.0f} s)')
    print(f'| model | {key} | segm_mAP_50 |')
    print('|---|---|---|')
    for name, m in (('untrained', ap_untrained), ('trained', ap_trained)):
        print(f'| {name} | {m.get(key, float("nan")):.3f} | '
              f'{m.get(key + "_50", float("nan")):.3f} |')
    print(f'work dir:        {osp.join(ROOT, work_dir)}')
    print(f'checkpoint:      {ckpt}')
    print(f'training log:    {osp.join(ROOT, work_dir)}/<timestamp>/')
    print(f'loss curves:     {loss_png}')
    print(f'predicted masks: {len(pngs)} PNGs under '
          f'{osp.join(ROOT, work_dir, "test_trained", "vis_predictions")}')
    print(f'summary:         {out}')


if __name__ == '__main__':
    main()
