"""The demo behind ``make demo``: toy data -> train -> evaluate -> pictures.

Runs the same commands a user runs, one after another, and times them:

1. ``tools/misc/make_toy_ytvis.py --out data/toy_ytvis21 --convert`` (raw
   YouTube-VIS 2021 layout, then the CocoVID conversion with a held-out split);
2. ``tools/misc/init_checkpoint.py`` + ``tools/test.py``: AP of the untrained
   model (the reference the trained AP must beat);
3. ``tools/train.py CONFIG --work-dir WORK_DIR``;
4. ``tools/test.py CONFIG WORK_DIR/iter_N.pth``: local AP and PNGs of the
   predicted masks over frames;
5. VPP: ``tools/train.py VPP_CONFIG --cfg-options load_from=<dense ckpt>``
   (the paper's protocol: sparse fine-tuning from the dense weights), then
   ``tools/test.py`` on it: local AP, per-frame keep ratios in the log and
   PNGs of the kept patches drawn over frames;
6. ``tools/analysis_tools/benchmark_vpp.py``: dense vs VPP FLOPs and
   wall-clock per frame of the toy model (backbone and whole model);

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
VPP_CONFIG = 'configs/toy/vpp_mask2former_vit_toy-ytvis21.py'
DATA_ROOT = 'data/toy_ytvis21'


def run(cmd, log):
    print('\n$ ' + ' '.join(cmd), flush=True)
    start = time.time()
    subprocess.run(cmd, cwd=ROOT, check=True)
    took = time.time() - start
    log.append(dict(cmd=' '.join(cmd), seconds=round(took, 1)))
    print(f'[demo] done in {took:.0f} s', flush=True)
    return took


# tools/test.py evaluates right after every training: skip the config's own
# validation at the last iteration so the demo does not evaluate twice.
NO_VAL = 'train_cfg.val_interval=1000000000'


def train(py, config, work_dir, options, log):
    """``tools/train.py`` (no in-training validation); returns the seconds
    it took and the path of its last checkpoint."""
    took = run([py, 'tools/train.py', config, '--work-dir', work_dir,
                '--cfg-options', NO_VAL] + options, log)
    with open(osp.join(ROOT, work_dir, 'last_checkpoint')) as f:
        return took, f.read().strip()


def test(py, config, ckpt, test_dir, log):
    """``tools/test.py``; returns the metrics it wrote."""
    run([py, 'tools/test.py', config, ckpt, '--work-dir', test_dir], log)
    return latest_metrics(osp.join(ROOT, test_dir))


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
    parser.add_argument('--vpp-config', default=VPP_CONFIG)
    parser.add_argument('--vpp-iters', type=int, default=100,
                        help='VPP fine-tuning iterations from the dense '
                        'checkpoint (0 skips the VPP part)')
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

    untrained = osp.join(work_dir, 'untrained.pth')
    run([py, 'tools/misc/init_checkpoint.py', args.config, untrained], log)
    ap_untrained = test(py, args.config, untrained,
                        osp.join(work_dir, 'test_untrained'), log)

    iters = [f'train_cfg.max_iters={args.iters}'] if args.iters else []
    train_s, ckpt = train(py, args.config, work_dir, iters, log)
    ap_trained = test(py, args.config, ckpt,
                      osp.join(work_dir, 'test_trained'), log)
    loss_png = plot_losses(osp.join(ROOT, work_dir))

    pngs = sorted(glob.glob(osp.join(ROOT, work_dir, 'test_trained',
                                     'vis_predictions', '**', '*.png'),
                            recursive=True))
    vpp = run_vpp(args, py, work_dir, ckpt, log) if args.vpp_iters else None

    summary = dict(
        config=args.config,
        total_seconds=round(time.time() - start, 1),
        train_seconds=round(train_s, 1),
        untrained=ap_untrained,
        trained=ap_trained,
        checkpoint=ckpt,
        loss_plot=loss_png,
        prediction_pngs=pngs,
        vpp=vpp,
        steps=log)
    out = osp.join(ROOT, work_dir, 'demo_summary.json')
    with open(out, 'w') as f:
        json.dump(summary, f, indent=2)

    key = 'youtube_vis/segm_mAP'
    print('\n' + '=' * 72)
    print(f'mmsparse demo finished in {summary["total_seconds"]:.0f} s '
          f'(dense training {train_s:.0f} s)')
    print(f'| model | {key} | segm_mAP_50 | patch keep ratio (PKR) |')
    print('|---|---|---|---|')
    rows = [('untrained', ap_untrained, 1.0),
            ('trained (dense)', ap_trained, 1.0)]
    if vpp:
        name = f'VPP keep {vpp["keep_ratio"]:g} (+{args.vpp_iters} iters)'
        rows.append((name, vpp['metrics'],
                     vpp['metrics'].get('vpp_pkr', float('nan'))))
    for name, m, pkr in rows:
        print(f'| {name} | {m.get(key, float("nan")):.3f} | '
              f'{m.get(key + "_50", float("nan")):.3f} | {pkr:.3f} |')
    if vpp and vpp.get('speed'):
        print('\nspeed per frame, dense vs VPP (benchmark_vpp.py, '
              'toy model at its test size):')
        print(vpp['speed']['table'])
    print(f'work dir:        {osp.join(ROOT, work_dir)}')
    print(f'checkpoint:      {ckpt}')
    print(f'training log:    {osp.join(ROOT, work_dir)}/<timestamp>/')
    print(f'loss curves:     {loss_png}')
    print(f'predicted masks: {len(pngs)} PNGs under '
          f'{osp.join(ROOT, work_dir, "test_trained", "vis_predictions")}')
    if vpp:
        print(f'VPP kept patches: {len(vpp["kept_patch_pngs"])} PNGs under '
              f'{vpp["kept_patch_dir"]}')
    print(f'summary:         {out}')


def run_vpp(args, py, work_dir, dense_ckpt, log):
    """Fine-tune VPP from the dense checkpoint, test it, benchmark it."""
    from mmengine.config import Config
    vpp_dir = osp.join(work_dir, 'vpp')
    _, vpp_ckpt = train(py, args.vpp_config, vpp_dir, [
        f'load_from={dense_ckpt}', f'train_cfg.max_iters={args.vpp_iters}',
        f'default_hooks.checkpoint.interval={args.vpp_iters}'
    ], log)
    test_dir = osp.join(vpp_dir, 'test')
    metrics = test(py, args.vpp_config, vpp_ckpt, test_dir, log)
    kept_dir = osp.join(ROOT, test_dir, 'vpp_kept_patches')
    kept = sorted(glob.glob(osp.join(kept_dir, '**', '*.png'),
                            recursive=True))
    cfg = Config.fromfile(osp.join(ROOT, args.vpp_config))
    keep = cfg.model.backbone.keep_ratio
    bench_json = osp.join(ROOT, vpp_dir, 'benchmark_vpp.json')
    run([py, 'tools/analysis_tools/benchmark_vpp.py', args.vpp_config,
         '--checkpoint', vpp_ckpt, '--keep-ratios', '1.0', str(keep),
         '--shape', '192', '320',
         '--repeat', '5', '--out', bench_json], log)
    with open(bench_json) as f:
        speed = json.load(f)
    return dict(config=args.vpp_config, keep_ratio=keep,
                checkpoint=vpp_ckpt, metrics=metrics,
                kept_patch_dir=kept_dir, kept_patch_pngs=kept, speed=speed)


if __name__ == '__main__':
    main()
