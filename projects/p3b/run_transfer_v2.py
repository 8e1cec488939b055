"""P3B transfer experiment v2: can block benefit matter on this CPU?

    python projects/p3b/run_transfer_v2.py [--work-dir DIR] [--seeds 0 1 2 3 4]
        [--keep-ratios 0.5 0.25] [--methods ...] [--probe reference|cheap]
        [--prune-epochs 50] [--finetune-epochs 20] [--threads 1]
        [--report-only | --dry-run]

Stages (each an mmengine ``Runner`` on ``configs/p3b/toy/*toy8_shifted*``):

1. **source**: a tiny DeiT with 8 layers (16 attention / MLP sub-blocks) is
   trained to convergence on plain digits 0-4 (scikit-learn's bundled
   digits; no download).
2. **dense + benefit** (row ``dense``, one per seed): the source backbone
   with a new head adapts to digits 5-9 in a strongly shifted domain
   (rotated 90 +- 10 degrees, scaled, shifted, inverted, noised) for
   ``--prune-epochs``; a ``P3BHook`` with ``keep_ratio=1`` and
   ``tau_max=0`` keeps every gate at exactly 1 (the model trains densely)
   and records the block benefit of every sub-block once per epoch: the
   paper's Fig. 1 (do some blocks gain benefit late?).
3. **pruning rows** at every keep ratio (parameters) and seed, with the
   same gates, schedule (statistics from epoch 10, goal at 25, hard masks
   and slim export at ``--prune-epochs`` = 50: the official README run)
   and soft-to-hard masks:
   ``P3B`` (benefit budgets, recomputed every epoch: reactivation),
   ``P3B-frozen`` (P3B whose first budget is kept for the rest of the run:
   no reactivation: ``block_budget='benefit-first'``), ``uniform`` (the same
   keep ratio in every block, Taylor ranking), ``magnitude`` (uniform +
   weight-norm ranking).
4. every row (dense included) is then fine-tuned for ``--finetune-epochs``
   with the same recipe (the ``finetune.py`` the hook wrote: slim model,
   AdamW, cosine from ``--finetune-lr``), so all rows get equal pruning
   and fine-tuning budgets.

Every row writes ``rows/<method>_kr<keep>_s<seed>.json`` (accuracy after
the transfer / pruning run and after fine-tuning, per-image correctness
on the 1,077 test images, parameters, block keep ratios, times) *after* it
is complete: that file is the row's done-marker, a rerun skips it (a row
interrupted half-way restarts; a finished pruning stage is kept in the
row's work dir). The settings the rows share and ``--cfg-options`` are kept
in ``run_options.json``: a rerun of the work dir with other values is
refused before any work. ``--report-only`` writes the outputs from the finished
rows; ``--dry-run`` runs nothing and prints the plan: every row's status,
whether the source stage is done and the estimated time left. Outputs in
the work dir: ``results.md`` (table), ``results.json``,
``accuracy.png``, ``paired_diffs.png``, ``benefit_over_training.png``
(mean over seeds), ``keep_ratio_p3b_vs_frozen.png``.

Statistics (``mmsparse.utils.stats``): paired differences per seed with a
95 % t interval over seeds, and a paired bootstrap over the held-out
*digits* (the 3 variants of a digit are resampled together) of the
seed-averaged per-image correctness.
"""
import argparse
import glob
import json
import os
import os.path as osp
import shutil
import statistics
import time

import numpy as np
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mmsparse.experiment import OptionsLock, RowStore
from mmsparse.utils.stats import (format_diff, paired_bootstrap,
                                  paired_seed_interval)

CONFIG_DIR = osp.join(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))), 'configs', 'p3b', 'toy')
SOURCE_CFG = 'deit-toy8_shifted-digits-source.py'
BENEFIT_CFG = 'benefit_deit-toy8_shifted-digits-transfer.py'
METHODS = {
    'P3B': 'p3b_deit-toy8_shifted-digits-transfer.py',
    'P3B-frozen': 'p3b_deit-toy8_shifted-digits-transfer.py',
    'uniform': 'uniform_deit-toy8_shifted-digits-transfer.py',
    'magnitude': 'magnitude_deit-toy8_shifted-digits-transfer.py',
}
#: (row, reference row) pairs of the comparison table; the dense benefit
#: run (keep 1) is the reference of every keep ratio: the known-bad
#: baselines must lose against it before the methods are ranked
COMPARISONS = (('uniform', 'dense'), ('magnitude', 'dense'),
               ('P3B-frozen', 'dense'), ('P3B', 'dense'),
               ('P3B', 'uniform'), ('P3B', 'P3B-frozen'),
               ('P3B', 'magnitude'), ('P3B-frozen', 'uniform'),
               ('magnitude', 'uniform'))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/p3b_transfer_v2')
    parser.add_argument('--seeds', type=int, nargs='+',
                        default=[0, 1, 2, 3, 4])
    parser.add_argument('--keep-ratios', type=float, nargs='+',
                        default=[0.5, 0.25])
    parser.add_argument('--methods', nargs='+', default=list(METHODS),
                        choices=list(METHODS))
    parser.add_argument('--probe', default='reference',
                        choices=['reference', 'cheap'],
                        help='probe design of the P3B rows and the '
                        'benefit logging (P3BHook key `probe`)')
    parser.add_argument('--source-epochs', type=int, default=100)
    parser.add_argument('--prune-epochs', type=int, default=50)
    parser.add_argument('--prune-start', type=int, default=10)
    parser.add_argument('--prune-sparse', type=int, default=25)
    parser.add_argument('--finetune-epochs', type=int, default=20)
    parser.add_argument('--finetune-lr', type=float, default=3e-4)
    parser.add_argument('--val-every', type=int, default=5,
                        help='epochs between test-set evaluations during '
                        'the transfer / pruning run (the learning curve)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads per row')
    parser.add_argument('--jobs', type=int, default=2,
                        help='rows run at the same time, each in its own '
                        'process (2 = one per core of this machine)')
    parser.add_argument('--n-boot', type=int, default=2000)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--report-only', action='store_true',
                      help='only write the outputs from finished rows')
    mode.add_argument('--dry-run', action='store_true',
                      help='run nothing: print the planned rows in run '
                      'order with their status, whether the source stage '
                      'is done and the estimated time left')
    parser.add_argument('--cfg-options', nargs='*', default=[],
                        metavar='KEY=VALUE',
                        help='python-literal overrides applied to every '
                        'config that has the parent key (e.g. '
                        'train_dataloader.batch_size=16); for smoke tests')
    args = parser.parse_args(argv)
    if not 0 <= args.prune_start <= args.prune_sparse < args.prune_epochs:
        parser.error('need 0 <= --prune-start <= --prune-sparse < '
                     '--prune-epochs')
    return args


# ------------------------------------------------------------ utilities
def write_json(path: str, obj) -> None:
    """Atomic write: a done-marker is either complete or absent."""
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def read_json(path: str):
    with open(path) as f:
        return json.load(f)


def load_cfg(args, file: str) -> Config:
    cfg = Config.fromfile(osp.join(CONFIG_DIR, file))
    for item in args.cfg_options:
        key, value = item.split('=', 1)
        obj = cfg
        *path, last = key.split('.')
        try:
            for p in path:
                obj = obj[int(p)] if p.isdigit() else obj[p]
        except (KeyError, IndexError):  # not in this config
            continue
        obj[last] = eval(value, {})  # literal overrides for smoke tests
    return cfg


def set_epochs(cfg: Config, epochs: int, val_interval=None) -> None:
    cfg.train_cfg.max_epochs = epochs
    cfg.train_cfg.val_interval = val_interval or epochs
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook',
                                        interval=epochs, max_keep_ckpts=1)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=50)


def build_runner(cfg: Config, work_dir: str, name: str) -> Runner:
    cfg.work_dir = work_dir
    cfg.experiment_name = name
    return Runner.from_cfg(cfg)


@torch.no_grad()
def per_image(runner: Runner) -> dict:
    """Test-set accuracy (runner.test()) and per-image correctness."""
    metrics = runner.test()
    model = runner.model
    model.eval()
    correct, digit = [], []
    for data in runner.test_loop.dataloader:
        for out in model.test_step(data):
            correct.append(int(out.pred_label.item() == out.gt_label.item()))
    dataset = runner.test_loop.dataloader.dataset
    digit = [dataset.get_data_info(i)['digit_index']
             for i in range(len(dataset))]
    top1 = float(metrics['accuracy/top1'])
    if abs(100.0 * np.mean(correct) - top1) > 1e-3:
        raise RuntimeError(f'per-image accuracy {100 * np.mean(correct)} != '
                           f'runner.test() {top1}')
    return dict(top1=top1, correct=''.join(map(str, correct)), digit=digit)


def val_curve(work_dir: str) -> list:
    """(epoch, top1) of the validation runs logged in ``work_dir``."""
    out = []
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                if 'accuracy/top1' in rec:
                    out.append((rec.get('epoch', rec.get('step')),
                                rec['accuracy/top1']))
    return out


# ---------------------------------------------------------------- paths
def source_files(work_dir: str) -> tuple:
    """(work dir, done-marker, checkpoint) of the source stage."""
    source = osp.join(work_dir, 'source')
    return (source, osp.join(source, 'source.json'),
            osp.join(source, 'source.pth'))


def row_name(method: str, keep: float, seed: int) -> str:
    return f'{method}_kr{keep:g}_s{seed}'


def row_marker(work_dir: str, name: str) -> str:
    """The finished row's file: its done-marker."""
    return osp.join(work_dir, 'rows', name + '.json')


def prune_marker(work_dir: str, name: str) -> str:
    """The finished pruning stage of a row (kept for the fine-tune)."""
    return osp.join(work_dir, 'runs', name, 'prune.json')


# ---------------------------------------------------------------- stages
def source_stage(args) -> str:
    """Train the source model once; returns its checkpoint."""
    work_dir, marker, ckpt = source_files(args.work_dir)
    if osp.isfile(marker) and osp.isfile(ckpt):
        return ckpt
    shutil.rmtree(work_dir, ignore_errors=True)
    cfg = load_cfg(args, SOURCE_CFG)
    set_epochs(cfg, args.source_epochs, max(1, args.source_epochs // 5))
    warmup = min(3, args.source_epochs - 1)
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0,
             end=warmup, convert_to_iter_based=True),
        dict(type='CosineAnnealingLR', by_epoch=True, begin=warmup,
             end=args.source_epochs, eta_min=1e-5,
             convert_to_iter_based=True)
    ][0 if warmup > 0 else 1:]
    start = time.time()
    runner = build_runner(cfg, work_dir, 'source')
    runner.train()
    metrics = runner.test()
    torch.save(dict(state_dict=runner.model.state_dict(),
                    meta=dict(epochs=args.source_epochs)), ckpt)
    write_json(marker, dict(top1=float(metrics['accuracy/top1']),
                            curve=val_curve(work_dir),
                            seconds=time.time() - start))
    return ckpt


def prune_cfg(args, method: str, keep: float, seed: int,
              source: str) -> Config:
    file = BENEFIT_CFG if method == 'dense' else METHODS[method]
    cfg = load_cfg(args, file)
    cfg.model.backbone.init_cfg.checkpoint = source
    cfg.randomness = dict(seed=seed)
    set_epochs(cfg, args.prune_epochs, args.val_every)
    hook = cfg.custom_hooks[0]
    hook.update(prune_finalize=args.prune_epochs, seed=seed)
    if method == 'dense':
        hook.update(keep_ratio=1.0, tau_max=0.0, prune_start=0,
                    prune_sparse=0, probe=args.probe)
    else:
        hook.update(keep_ratio=keep, prune_start=args.prune_start,
                    prune_sparse=args.prune_sparse)
        if method == 'P3B-frozen':
            hook.update(block_budget='benefit-first')
        if hook.get('block_budget', 'benefit') != 'uniform':
            hook.update(probe=args.probe)
    return cfg


def prune_stage(args, method, keep, seed, source, work_dir) -> dict:
    """The transfer / pruning run (cached in ``prune.json``)."""
    marker = osp.join(work_dir, 'prune.json')
    if osp.isfile(marker):
        return read_json(marker)
    shutil.rmtree(work_dir, ignore_errors=True)
    cfg = prune_cfg(args, method, keep, seed, source)
    start, cpu = time.time(), time.process_time()
    runner = build_runner(cfg, work_dir, row_name(method, keep, seed))
    runner.train()
    result = per_image(runner)
    export = osp.join(work_dir, 'p3b')
    history = read_json(osp.join(export, 'history.json'))
    slim = torch.load(osp.join(export, 'slim_model.pth'), map_location='cpu',
                      weights_only=False)
    result.update(
        params=int(sum(v.numel() for k, v in slim['state_dict'].items()
                       if not k.endswith('num_batches_tracked'))),
        global_keep=history['history'][-1]['global_keep'],
        block_keep=history['history'][-1]['block_keep'],
        curve=val_curve(work_dir), seconds=time.time() - start,
        cpu_seconds=time.process_time() - cpu)
    write_json(marker, result)
    return result


def finetune_stage(args, seed, work_dir) -> dict:
    """The shared fine-tune of the slim model the hook exported."""
    cfg = Config.fromfile(osp.join(work_dir, 'p3b', 'finetune.py'))
    ft_dir = osp.join(work_dir, 'finetune')
    shutil.rmtree(ft_dir, ignore_errors=True)
    cfg.randomness = dict(seed=seed)
    set_epochs(cfg, args.finetune_epochs)
    cfg.optim_wrapper.optimizer.lr = args.finetune_lr
    cfg.param_scheduler = [
        dict(type='CosineAnnealingLR', by_epoch=True, begin=0,
             end=args.finetune_epochs, eta_min=0.0,
             convert_to_iter_based=True)
    ]
    start, cpu = time.time(), time.process_time()
    runner = build_runner(cfg, ft_dir, osp.basename(work_dir) + '_ft')
    runner.train()
    result = per_image(runner)
    result.update(seconds=time.time() - start,
                  cpu_seconds=time.process_time() - cpu)
    return result


def run_row(args, method: str, keep: float, seed: int, source: str):
    name = row_name(method, keep, seed)
    marker = row_marker(args.work_dir, name)
    if osp.isfile(marker):
        return read_json(marker), False
    work_dir = osp.join(args.work_dir, 'runs', name)
    pruned = prune_stage(args, method, keep, seed, source, work_dir)
    tuned = finetune_stage(args, seed, work_dir)
    row = dict(method=method, keep_ratio=keep, seed=seed,
               params=pruned['params'], global_keep=pruned['global_keep'],
               block_keep=pruned['block_keep'], digit=pruned['digit'],
               acc_pruned=pruned['top1'], correct_pruned=pruned['correct'],
               acc_finetuned=tuned['top1'],
               correct_finetuned=tuned['correct'], curve=pruned['curve'],
               seconds=pruned['seconds'] + tuned['seconds'],
               cpu_seconds=pruned['cpu_seconds'] + tuned['cpu_seconds'],
               history=osp.relpath(osp.join(work_dir, 'p3b', 'history.json'),
                                   args.work_dir),
               settings=row_settings(args))
    os.makedirs(osp.dirname(marker), exist_ok=True)
    write_json(marker, row)
    return row, True


def row_settings(args) -> dict:
    """The settings every row of a work dir shares (kept in each row)."""
    return dict(probe=args.probe, prune_epochs=args.prune_epochs,
                prune_start=args.prune_start, prune_sparse=args.prune_sparse,
                finetune_epochs=args.finetune_epochs,
                finetune_lr=args.finetune_lr, source_epochs=args.source_epochs)


def run_options(args) -> dict:
    """What the stages of a work dir depend on: the row settings and
    ``--cfg-options``."""
    return dict(row_settings(args), cfg_options=list(args.cfg_options))


def options_lock(args) -> OptionsLock:
    """The work dir's option lock; a work dir from before
    ``run_options.json`` is read from its first row's settings (without
    ``--cfg-options``); only finished rows or the source stage lock it."""
    store = RowStore(args.work_dir)

    def legacy():
        settings = [r['settings'] for r in store.all() if 'settings' in r]
        return dict(settings[0], cfg_options=[]) if settings else None

    return OptionsLock(args.work_dir, legacy=legacy, holds_work=lambda: bool(
        store.files() or osp.isfile(source_files(args.work_dir)[1])))


def planned_rows(args):
    rows = [('dense', 1.0, s) for s in args.seeds]
    rows += [(m, k, s) for k in args.keep_ratios for m in args.methods
             for s in args.seeds]
    return rows


# --------------------------------------------------------------- report
def _mean_std(vals):
    if not vals:
        return float('nan'), float('nan')
    return statistics.fmean(vals), (statistics.stdev(vals)
                                    if len(vals) > 1 else 0.0)


def _digit_bootstrap(rows_a, rows_b, key, n_boot):
    """Paired bootstrap over held-out digits of the seed-averaged
    correctness (rows of the same seeds, same test images)."""
    digit = np.asarray(rows_a[0]['digit'])
    ids, inverse = np.unique(digit, return_inverse=True)

    def per_digit(rows):
        c = np.mean([[int(ch) for ch in r[key]] for r in rows], axis=0)
        sums = np.bincount(inverse, weights=c, minlength=len(ids))
        return sums, np.bincount(inverse, minlength=len(ids))

    sa, n = per_digit(rows_a)
    sb, _ = per_digit(rows_b)
    return paired_bootstrap(lambda i: sa[i].sum() / n[i].sum(),
                            lambda i: sb[i].sum() / n[i].sum(), len(ids),
                            n_boot=n_boot, seed=0)


def compare(rows, keep, a, b, n_boot):
    """Paired (same seeds) comparison of method ``a`` at ``keep`` with
    ``b`` at ``keep`` (or with the dense rows, whatever ``keep``)."""
    def at(method):
        return {r['seed']: r for r in rows if r['method'] == method and
                (method == 'dense' or r['keep_ratio'] == keep)}

    ra, rb = at(a), at(b)
    seeds = sorted(set(ra) & set(rb))
    if len(seeds) < 2:
        return None
    out = dict(a=a, b=b, keep_ratio=keep, seeds=seeds)
    for key in ('acc_pruned', 'acc_finetuned'):
        out[key] = paired_seed_interval([ra[s][key] for s in seeds],
                                        [rb[s][key] for s in seeds])
        corr = key.replace('acc', 'correct')
        boot = _digit_bootstrap([ra[s] for s in seeds],
                                [rb[s] for s in seeds], corr, n_boot)
        out[key + '_digits'] = boot
    return out


def late_benefit(rows, work_dir):
    """Block benefit of the dense transfer over training (per seed) and
    the epoch each sub-block reaches half of its final benefit."""
    curves = []
    for r in rows:
        if r['method'] != 'dense':
            continue
        hist = read_json(osp.join(work_dir, r['history']))
        per_epoch = hist['iters_per_epoch']
        recs = [h for h in hist['history'] if h['benefit_cls']]
        epochs = [(h['step'] + 1) / per_epoch for h in recs]
        ben = np.array([[0.5 * (c + p) for c, p in
                         zip(h['benefit_cls'], h['benefit_patch'])]
                        for h in recs])
        curves.append((epochs, ben))
    if not curves:
        return None
    num = min(len(e) for e, _ in curves)
    epochs = curves[0][0][:num]
    mean = np.mean([b[:num] for _, b in curves], axis=0)  # (T, S)
    final = mean[-max(1, num // 8):].mean(0)
    early = mean[:max(1, num // 8)].mean(0)
    half = []
    for j in range(mean.shape[1]):
        gain = final[j] - early[j]
        if gain <= 0:
            half.append(None)
            continue
        hit = np.flatnonzero(mean[:, j] - early[j] >= 0.5 * gain)
        half.append(float(epochs[hit[0]]))
    return dict(epochs=[float(e) for e in epochs], mean=mean.tolist(),
                early=early.tolist(), final=final.tolist(),
                half_gain_epoch=half, seeds=len(curves))


def block_name(j: int) -> str:
    return f'{j // 2}.{"attn" if j % 2 == 0 else "mlp"}'


def write_report(args, rows):
    out = args.work_dir
    if not rows:
        print('no finished rows yet')
        return
    dense_params = next((r['params'] for r in rows
                         if r['method'] == 'dense'), None)
    groups = {}
    for r in rows:
        groups.setdefault((r['method'], r['keep_ratio']), []).append(r)
    order = ['dense'] + list(METHODS)
    summary = []
    for (method, keep), rs in sorted(
            groups.items(), key=lambda kv: (-kv[0][1],
                                            order.index(kv[0][0]))):
        summary.append(dict(
            method=method, keep_ratio=keep, seeds=sorted(r['seed'] for r in rs),
            params=statistics.fmean(r['params'] for r in rs),
            acc_pruned=_mean_std([r['acc_pruned'] for r in rs]),
            acc_finetuned=_mean_std([r['acc_finetuned'] for r in rs]),
            seconds=statistics.fmean(r['seconds'] for r in rs),
            cpu_seconds=statistics.fmean(r['cpu_seconds'] for r in rs)))
    comps = [c for keep in args.keep_ratios for a, b in COMPARISONS
             for c in [compare(rows, keep, a, b, args.n_boot)] if c]
    late = late_benefit(rows, out)
    n_test = len(rows[0]['correct_finetuned'])

    lines = [
        f'Test set: {n_test} images (one image = {100 / n_test:.3f} %), '
        f'{len(set(rows[0]["digit"]))} held-out digits.', '',
        '| method | keep (goal) | params (slim) | params / dense | top-1 '
        'after transfer / pruning run | top-1 after fine-tune | s per row |',
        '|---|---|---|---|---|---|---|'
    ]
    for s in summary:
        ratio = s['params'] / dense_params if dense_params else float('nan')
        lines.append(
            f'| {s["method"]} | {s["keep_ratio"]:g} | {s["params"]:,.0f} | '
            f'{ratio:.3f} | {s["acc_pruned"][0]:.2f} ± '
            f'{s["acc_pruned"][1]:.2f} | {s["acc_finetuned"][0]:.2f} ± '
            f'{s["acc_finetuned"][1]:.2f} | {s["seconds"]:.0f} |')
    lines += [
        '', 'mean ± std over seeds. Paired differences (points of top-1), '
        '95 % intervals: t over seeds (same seed = same data order, head '
        'and probes) and bootstrap over held-out digits of the '
        'seed-averaged correctness:', '',
        '| keep | comparison | seeds | after pruning run: per-seed t | '
        'bootstrap (digits) | after fine-tune: per-seed t | bootstrap '
        '(digits) |', '|---|---|---|---|---|---|---|'
    ]
    for c in comps:
        lines.append(
            f'| {c["keep_ratio"]:g} | {c["a"]} − {c["b"]} | '
            f'{len(c["seeds"])} | {format_diff(c["acc_pruned"])} | '
            f'{format_diff(c["acc_pruned_digits"], 100)} | '
            f'{format_diff(c["acc_finetuned"])} | '
            f'{format_diff(c["acc_finetuned_digits"], 100)} |')
    if late:
        lines += ['', f'Block benefit of the dense transfer (mean of cls and '
                  f'patch ΔCE, mean over {late["seeds"]} seeds): first '
                  f'eighth of training → last eighth, epoch at half of the '
                  'gain:', '',
                  '| sub-block | early | final | half-gain epoch |',
                  '|---|---|---|---|']
        for j, (e, f, h) in enumerate(zip(late['early'], late['final'],
                                          late['half_gain_epoch'])):
            lines.append(f'| {block_name(j)} | {e:+.3f} | {f:+.3f} | '
                         f'{"-" if h is None else f"{h:.1f}"} |')
    table = '\n'.join(lines)
    with open(osp.join(out, 'results.md'), 'w') as f:
        f.write(table + '\n')
    write_json(osp.join(out, 'results.json'), dict(
        args=vars(args), dense_params=dense_params, summary=summary,
        comparisons=comps, late_benefit=late,
        rows=[{k: v for k, v in r.items() if k != 'digit'} for r in rows]))
    try:
        plot(out, summary, comps, late, rows, dense_params)
    except ImportError as err:  # matplotlib missing: tables only
        print(f'no plots ({err})')
    print(table)


def plot(out, summary, comps, late, rows, dense_params):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    colors = {'P3B': 'tab:red', 'P3B-frozen': 'tab:orange',
              'uniform': 'tab:blue', 'magnitude': 'tab:green'}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, key, title in ((axes[0], 'acc_pruned', 'after the pruning run'),
                           (axes[1], 'acc_finetuned', 'after fine-tune')):
        for method, color in colors.items():
            pts = [s for s in summary if s['method'] == method]
            if pts and dense_params:
                ax.errorbar([s['params'] / dense_params for s in pts],
                            [s[key][0] for s in pts],
                            yerr=[s[key][1] for s in pts], fmt='o-',
                            color=color, label=method, capsize=3)
        dense = [s for s in summary if s['method'] == 'dense']
        if dense:
            ax.axhline(dense[0][key][0], color='k', ls='--', label='dense')
        ax.set_xlabel('kept parameters / dense')
        ax.set_title(f'target task, {title}')
        ax.grid(alpha=0.3)
    axes[0].set_ylabel('top-1 (%), mean ± std over seeds')
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(osp.join(out, 'accuracy.png'), dpi=110)
    plt.close(fig)

    if comps:
        fig, ax = plt.subplots(figsize=(8, 0.4 * len(comps) + 1.5))
        for i, c in enumerate(comps):
            for off, key, color in ((-0.15, 'acc_pruned', 'tab:gray'),
                                    (0.15, 'acc_finetuned', 'k')):
                r = c[key]
                ax.errorbar(r['diff'], i + off,
                            xerr=[[r['diff'] - r['low']],
                                  [r['high'] - r['diff']]], fmt='o',
                            color=color, capsize=3,
                            label=key.replace('acc_', '') if i == 0 else None)
        ax.set_yticks(range(len(comps)))
        ax.set_yticklabels([f'keep {c["keep_ratio"]:g}: {c["a"]} − {c["b"]}'
                            for c in comps])
        ax.axvline(0, color='k', lw=0.8)
        ax.set_xlabel('paired difference of top-1 (points), 95 % t interval '
                      'over seeds')
        ax.legend()
        fig.tight_layout()
        fig.savefig(osp.join(out, 'paired_diffs.png'), dpi=110)
        plt.close(fig)

    if late:
        mean = np.asarray(late['mean'])
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        cmap = plt.get_cmap('viridis')
        for j in range(mean.shape[1]):
            ax = axes[j % 2]
            ax.plot(late['epochs'], mean[:, j], color=cmap(j / mean.shape[1]),
                    label=block_name(j))
        for ax, kind in zip(axes, ('attention', 'MLP')):
            ax.set_title(f'{kind} sub-blocks: benefit during the dense '
                         'transfer')
            ax.set_xlabel('epoch')
            ax.axhline(0, color='k', lw=0.6)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, ncol=2)
        axes[0].set_ylabel('block benefit ΔCE (mean cls/patch, over seeds)')
        fig.tight_layout()
        fig.savefig(osp.join(out, 'benefit_over_training.png'), dpi=110)
        plt.close(fig)

    frozen = {r['keep_ratio']: r for r in rows
              if r['method'] == 'P3B-frozen' and r['seed'] == rows[0]['seed']}
    p3b = {r['keep_ratio']: r for r in rows
           if r['method'] == 'P3B' and r['seed'] == rows[0]['seed']}
    keeps = sorted(set(frozen) & set(p3b), reverse=True)
    if keeps:
        fig, axes = plt.subplots(len(keeps), 2, figsize=(11, 3.5 * len(keeps)),
                                 squeeze=False)
        for row_axes, keep in zip(axes, keeps):
            for ax, r, title in ((row_axes[0], p3b[keep], 'P3B'),
                                 (row_axes[1], frozen[keep], 'P3B-frozen')):
                hist = read_json(osp.join(out, r['history']))
                per_epoch = hist['iters_per_epoch']
                x = [(h['step'] + 1) / per_epoch for h in hist['history']]
                ks = np.array([h['block_keep'] for h in hist['history']])
                for j in range(ks.shape[1]):
                    ax.plot(x, ks[:, j], color=plt.get_cmap('viridis')(
                        j / ks.shape[1]), ls='-' if j % 2 == 0 else '--',
                        label=block_name(j))
                ax.set_title(f'{title}, keep {keep:g}, seed {r["seed"]}')
                ax.set_xlabel('epoch')
                ax.set_ylabel('block keep ratio')
                ax.grid(alpha=0.3)
        axes[0][1].legend(fontsize=6, ncol=2)
        fig.tight_layout()
        fig.savefig(osp.join(out, 'keep_ratio_p3b_vs_frozen.png'), dpi=110)
        plt.close(fig)


def finished_rows(args):
    rows = []
    for method, keep, seed in planned_rows(args):
        path = row_marker(args.work_dir, row_name(method, keep, seed))
        if osp.isfile(path):
            rows.append(read_json(path))
    return rows


# -------------------------------------------------------------- dry run
#: the two cost families of rows: a pruning run that measures block
#: benefit with probes (the dense benefit row, P3B, P3B-frozen) or one that
#: trains gates only (uniform budget: uniform, magnitude)
FAMILY = {'dense': 'probes', 'P3B': 'probes', 'P3B-frozen': 'probes',
          'uniform': 'gates', 'magnitude': 'gates'}
#: seconds per row at 1 thread, 50 + 20 epochs, ``--probe reference``
#: (projects/p3b/README.md, "Cost of the full run"); the fine-tune share of
#: a row: 20 epochs x 68 iterations x 0.049 CPU s of dense training; cheap
#: probes cost 0.09 instead of 0.18 CPU s per pruning iteration
CALIBRATION = dict(probes=680.0, gates=285.0)
CALIBRATION_FINETUNE = 67.0
CALIBRATION_EPOCHS = (50, 20)
CHEAP_PROBE_FACTOR = 0.09 / 0.18


def calibrated_seconds(args, family: str) -> tuple:
    """(row, fine-tune) seconds of one row of ``family`` from the README
    calibration, scaled to ``--prune-epochs`` / ``--finetune-epochs``."""
    prune_epochs, finetune_epochs = CALIBRATION_EPOCHS
    finetune = CALIBRATION_FINETUNE * args.finetune_epochs / finetune_epochs
    prune = ((CALIBRATION[family] - CALIBRATION_FINETUNE) * args.prune_epochs
             / prune_epochs)
    if family == 'probes' and args.probe == 'cheap':
        prune *= CHEAP_PROBE_FACTOR
    return prune + finetune, finetune


def measured_seconds(work_dir: str) -> tuple:
    """Per family: the wall seconds of every finished row in
    ``rows/``, and the fine-tune share (row minus its ``prune.json``) of
    those whose pruning stage is still kept."""
    rows, finetune = {}, {}
    for path in sorted(glob.glob(osp.join(work_dir, 'rows', '*.json'))):
        row = read_json(path)
        family = FAMILY.get(row.get('method'))
        if family is None:
            continue
        rows.setdefault(family, []).append(row['seconds'])
        prune = prune_marker(work_dir, osp.basename(path)[:-len('.json')])
        if osp.isfile(prune):
            finetune.setdefault(family, []).append(
                row['seconds'] - read_json(prune)['seconds'])
    return rows, finetune


def dry_run(args) -> float:
    """Print the planned rows in run order with their status, whether the
    source stage is done and the estimated time left; runs nothing.
    Returns the estimated wall seconds left (rows only)."""
    plan = planned_rows(args)
    measured_rows, measured_finetune = measured_seconds(args.work_dir)
    estimate, basis = {}, {}
    for family in ('probes', 'gates'):
        row_s, finetune_s = calibrated_seconds(args, family)
        basis[family] = f'calibration of the README, {row_s:.0f} s per row'
        if measured_rows.get(family):
            row_s = statistics.fmean(measured_rows[family])
            basis[family] = (f'mean of {len(measured_rows[family])} finished '
                             f'rows, {row_s:.0f} s per row')
        if measured_finetune.get(family):
            finetune_s = statistics.fmean(measured_finetune[family])
        basis[family] += f', fine-tune {finetune_s:.0f} s'
        estimate[family] = dict(row=row_s, finetune=finetune_s)

    source, marker, ckpt = source_files(args.work_dir)
    if osp.isfile(marker) and osp.isfile(ckpt):
        print(f'source stage: done ({source})')
    else:
        print('source stage: not done (the run trains it first; not in the '
              'estimate below)')
    print(f'{len(plan)} rows in run order (work dir {args.work_dir}):')
    done, left = 0, []
    for i, (method, keep, seed) in enumerate(plan):
        name = row_name(method, keep, seed)
        row = row_marker(args.work_dir, name)
        family = FAMILY[method]
        if osp.isfile(row):
            done += 1
            status = f'finished ({read_json(row)["seconds"]:.0f} s)'
        elif osp.isfile(prune_marker(args.work_dir, name)):
            left.append(estimate[family]['finetune'])
            status = (f'pruning stage finished, fine-tune pending '
                      f'(~{left[-1]:.0f} s)')
        else:
            left.append(estimate[family]['row'])
            status = f'not started (~{left[-1]:.0f} s)'
        print(f'{i + 1:>4}/{len(plan)} {name}: {status}')
    jobs = max(1, min(args.jobs, len(left)))
    wall = max(sum(left) / jobs, max(left, default=0.0))
    print(f'finished: {done}/{len(plan)} rows')
    print(f'estimated time left: {sum(left):,.0f} row-seconds on '
          f'{jobs} job(s) ~ {wall:,.0f} s = {wall / 3600:.1f} h '
          f'({args.threads} thread(s) per row)')
    for family, methods in (('probes', 'dense benefit / P3B / P3B-frozen'),
                            ('gates', 'uniform / magnitude')):
        print(f'  {methods}: {basis[family]}')
    return wall


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    args.work_dir = osp.abspath(args.work_dir)
    lock = options_lock(args)
    error = lock.mismatch(run_options(args))
    if error:
        raise SystemExit(f'run_transfer_v2.py: error: {error}')
    if args.dry_run:
        dry_run(args)
        return
    os.makedirs(args.work_dir, exist_ok=True)
    if not args.report_only:
        lock.write(run_options(args))
        run_all(args)
    write_report(args, finished_rows(args))


def _worker(args, method, keep, seed, source):
    torch.set_num_threads(args.threads)
    return run_row(args, method, keep, seed, source)


def run_all(args) -> None:
    """The source stage, then every unfinished row (``--jobs`` at a
    time, each in a fresh process)."""
    start = time.time()
    source = source_stage(args)
    plan = planned_rows(args)

    def report(i, row, ran):
        method, keep, seed = plan[i]
        print(f'[{time.time() - start:.0f} s] {i + 1}/{len(plan)} '
              f'{method} keep {keep:g} seed {seed}: pruned '
              f'{row["acc_pruned"]:.2f}, fine-tuned '
              f'{row["acc_finetuned"]:.2f}'
              + ('' if ran else ' (done before, skipped)'), flush=True)

    if args.jobs <= 1:
        for i, (method, keep, seed) in enumerate(plan):
            report(i, *run_row(args, method, keep, seed, source))
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context('spawn'),
                             max_tasks_per_child=1) as pool:
        futures = [pool.submit(_worker, args, *item, source) for item in plan]
        for i, fut in enumerate(futures):
            report(i, *fut.result())


if __name__ == '__main__':
    main()
