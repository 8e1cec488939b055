"""P3B transfer experiment v2: can block benefit matter on this CPU?

    python projects/p3b/run_transfer_v2.py [--work-dir DIR] [--results-dir DIR]
        [--seeds 0 1 2 3 4] [--keep-ratios 0.5 0.25] [--methods ...]
        [--probe reference|cheap] [--prune-epochs 50] [--finetune-epochs 20]
        [--threads 1] [--jobs 2] [--cfg-options KEY=VALUE ...] [--report-only | --dry-run]

Stages (each an mmengine ``Runner`` on ``configs/p3b/toy/*toy8_shifted*``;
``projects/p3b/README.md`` explains the design): **source**, a tiny 8-layer
DeiT trained on plain digits 0-4; per seed the **dense** row (the source
backbone adapting to digits 5-9 in a shifted domain under a ``P3BHook`` that
keeps every gate at 1 and records the block benefit of every sub-block once
per epoch); per keep ratio and seed the **pruning rows** ``P3B``,
``P3B-frozen`` (no reactivation), ``uniform`` and ``magnitude``; every row
then fine-tunes its slim model with the same recipe.

On the harness (:mod:`mmsparse.experiment`): the source stage and every row
run in a process of their own (this script with ``--stage``; output in
``<work-dir>/logs/``), ``--jobs`` rows at a time. A row's file
``rows/<method>_kr<keep>_s<seed>.json`` (accuracies, per-image correctness on
the test images with the digit of each, parameters, block keep ratios, times)
is its done-marker; a finished pruning stage (``runs/<row>/prune.json``) is
kept for the fine-tune. The settings the rows share and ``--cfg-options`` are
locked in ``run_options.json`` (other values are refused before any work).
``--report-only`` writes ``results.{md,json}`` and four plots from the
finished rows (work dir and ``--results-dir``, with the row files);
``--dry-run`` prints the rows, their status and the time left. Statistics
(:mod:`mmsparse.utils.stats`): paired differences per seed with a 95 % t
interval, and a paired bootstrap over the held-out *digits* (the variants of
a digit resampled together) of the seed-averaged per-image correctness.
"""
import argparse
import os
import os.path as osp
import shutil
import statistics
import sys

from mmengine.config import Config, DictAction

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from mmsparse.experiment import (CostModel, OptionsLock,  # noqa: E402
                                 RowStore, ToolRunner, atomic_write_json,
                                 classify, format_option, items, run_rows,
                                 write_report)
from mmsparse.experiment.store import read_json  # noqa: E402
from mmsparse.p3b.history import benefit_timeline  # noqa: E402
from mmsparse.utils import p3b_report  # noqa: E402
from mmsparse.utils.p3b_report import (COMPARISONS, FAMILY,  # noqa: E402
                                       compare)

CONFIG_DIR = osp.join(ROOT, 'configs', 'p3b', 'toy')
SOURCE_CFG = 'deit-toy8_shifted-digits-source.py'
BENEFIT_CFG = 'benefit_deit-toy8_shifted-digits-transfer.py'
METHODS = {
    'P3B': 'p3b_deit-toy8_shifted-digits-transfer.py',
    'P3B-frozen': 'p3b_deit-toy8_shifted-digits-transfer.py',
    'uniform': 'uniform_deit-toy8_shifted-digits-transfer.py',
    'magnitude': 'magnitude_deit-toy8_shifted-digits-transfer.py',
}
#: ``--cfg-options`` keys the script sets itself
RESERVED_KEYS = ('train_cfg', 'randomness', 'param_scheduler', 'default_hooks.checkpoint',
                 'default_hooks.logger', 'work_dir', 'experiment_name',
                 'model.backbone.init_cfg.checkpoint') + tuple(
    f'custom_hooks.0.{k}' for k in ('keep_ratio', 'tau_max', 'prune_start', 'prune_sparse',
                                    'prune_finalize', 'seed', 'probe', 'block_budget'))
#: options of a finished work dir's ``results.json`` that are not the run's
NOT_REPORTED = ('stage', 'results_dir')
RUNNER = ToolRunner(ROOT)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog='run_transfer_v2.py',
                                     description=__doc__.split('\n')[0])
    add = parser.add_argument
    add('--work-dir', default='work_dirs/p3b_transfer_v2')
    add('--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4])
    add('--keep-ratios', type=float, nargs='+', default=[0.5, 0.25])
    add('--methods', nargs='+', default=list(METHODS), choices=list(METHODS))
    add('--probe', default='reference', choices=['reference', 'cheap'],
        help='probe design of the P3B rows and the benefit logging (P3BHook key `probe`)')
    add('--source-epochs', type=int, default=100)
    add('--prune-epochs', type=int, default=50)
    add('--prune-start', type=int, default=10)
    add('--prune-sparse', type=int, default=25)
    add('--finetune-epochs', type=int, default=20)
    add('--finetune-lr', type=float, default=3e-4)
    add('--val-every', type=int, default=5, help='epochs between test-set evaluations during '
        'the transfer / pruning run (the learning curve)')
    add('--threads', type=int, default=1, help='torch threads per row')
    add('--jobs', type=int, default=2, help='rows run at the same time, each in its own process')
    add('--n-boot', type=int, default=2000)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--report-only', action='store_true',
                      help='only write the outputs from finished rows')
    mode.add_argument('--dry-run', action='store_true',
                      help='run nothing: print the planned rows in run order with their '
                      'status, whether the source stage is done and the time left')
    add('--cfg-options', nargs='+', action=DictAction, default={}, metavar='KEY=VALUE',
        help='overrides of every config that has the key (e.g. train_dataloader.batch_size=16)')
    add('--results-dir', help='also write the report and the row files there')
    add('--stage', help=argparse.SUPPRESS)  # one stage in this process: 'source' or a row
    args = parser.parse_args(argv)
    if not 0 <= args.prune_start <= args.prune_sparse < args.prune_epochs:
        parser.error('need 0 <= --prune-start <= --prune-sparse < --prune-epochs')
    configs = {f: Config.fromfile(osp.join(CONFIG_DIR, f))
               for f in {SOURCE_CFG, BENEFIT_CFG, *METHODS.values()}} if args.cfg_options else {}
    error = classify.check_options(args.cfg_options, configs, RESERVED_KEYS,
                                   "use the script's arguments (epochs, keep ratios, seeds)")
    if error:
        parser.error(error)
    args.work_dir = osp.abspath(args.work_dir)
    return args


def load_cfg(args, file: str) -> Config:
    return classify.apply_options(Config.fromfile(osp.join(CONFIG_DIR, file)), args.cfg_options)


# ---------------------------------------------------------------- plan
def row_name(method: str, keep: float, seed: int) -> str:
    return f'{method}_kr{keep:g}_s{seed}'


def plan_rows(args):
    """The rows in run order: the dense rows, then per keep ratio and method
    every seed."""
    plan = [('dense', 1.0, s) for s in args.seeds]
    plan += [(m, k, s) for k in args.keep_ratios for m in args.methods for s in args.seeds]
    return [dict(name=row_name(m, k, s), method=m, keep_ratio=k, seed=s) for m, k, s in plan]


def source_files(work_dir: str) -> tuple:
    """(work dir, done-marker, checkpoint) of the source stage."""
    source = osp.join(work_dir, 'source')
    return source, osp.join(source, 'source.json'), osp.join(source, 'source.pth')


def prune_marker(work_dir: str, name: str) -> str:
    """The finished pruning stage of a row (kept for the fine-tune)."""
    return osp.join(work_dir, 'runs', name, 'prune.json')


def row_settings(args) -> dict:
    """The settings every row of a work dir shares (kept in each row)."""
    return dict(probe=args.probe, prune_epochs=args.prune_epochs, prune_start=args.prune_start,
                prune_sparse=args.prune_sparse, finetune_epochs=args.finetune_epochs,
                finetune_lr=args.finetune_lr, source_epochs=args.source_epochs)


def run_options(args) -> dict:
    """What the stages of a work dir depend on: the row settings and
    ``--cfg-options`` (as ``KEY=VALUE``)."""
    return dict(row_settings(args), cfg_options=[
        format_option(k, v) for k, v in args.cfg_options.items()])


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


# ---------------------------------------------------------------- stages (in their own process)
def test_correctness(runner) -> dict:
    """Test-set accuracy (``runner.test()``) and per-image correctness."""
    out = items.tested_correctness(runner, 'digit_index')
    return dict(top1=out['top1'], correct=out['correct'], digit=out['items'])


def source_stage(args) -> None:
    """Train the source model (its checkpoint and ``source.json``)."""
    import torch
    work_dir, marker, ckpt = source_files(args.work_dir)
    shutil.rmtree(work_dir, ignore_errors=True)
    cfg = load_cfg(args, SOURCE_CFG)
    classify.set_epochs(cfg, args.source_epochs, max(1, args.source_epochs // 5))
    warmup = min(3, args.source_epochs - 1)
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=warmup,
             convert_to_iter_based=True),
        dict(type='CosineAnnealingLR', by_epoch=True, begin=warmup, end=args.source_epochs,
             eta_min=1e-5, convert_to_iter_based=True)][0 if warmup > 0 else 1:]
    runner, clock = classify.train_in_process(cfg, work_dir, 'source')
    metrics = runner.test()
    torch.save(dict(state_dict=runner.model.state_dict(),
                    meta=dict(epochs=args.source_epochs)), ckpt)
    atomic_write_json(marker, dict(top1=float(metrics['accuracy/top1']),
                                   curve=classify.val_curve(work_dir),
                                   seconds=clock.wall()))


def prune_cfg(args, method: str, keep: float, seed: int, source: str) -> Config:
    cfg = load_cfg(args, BENEFIT_CFG if method == 'dense' else METHODS[method])
    cfg.model.backbone.init_cfg.checkpoint = source
    cfg.randomness = dict(seed=seed)
    classify.set_epochs(cfg, args.prune_epochs, args.val_every)
    hook = cfg.custom_hooks[0]
    hook.update(prune_finalize=args.prune_epochs, seed=seed)
    if method == 'dense':
        hook.update(keep_ratio=1.0, tau_max=0.0, prune_start=0, prune_sparse=0, probe=args.probe)
    else:
        hook.update(keep_ratio=keep, prune_start=args.prune_start,
                    prune_sparse=args.prune_sparse)
        if method == 'P3B-frozen':
            hook.update(block_budget='benefit-first')
        if hook.get('block_budget', 'benefit') != 'uniform':
            hook.update(probe=args.probe)
    return cfg


def prune_stage(args, row: dict, source: str, work_dir: str) -> dict:
    """The transfer / pruning run (cached in ``prune.json``)."""
    import torch
    marker = osp.join(work_dir, 'prune.json')
    if osp.isfile(marker):
        return read_json(marker)
    shutil.rmtree(work_dir, ignore_errors=True)
    cfg = prune_cfg(args, row['method'], row['keep_ratio'], row['seed'], source)
    runner, clock = classify.train_in_process(cfg, work_dir, row['name'])
    result = test_correctness(runner)
    export = osp.join(work_dir, 'p3b')
    last = read_json(osp.join(export, 'history.json'))['history'][-1]
    slim = torch.load(osp.join(export, 'slim_model.pth'), map_location='cpu', weights_only=False)
    result.update(
        params=int(sum(v.numel() for k, v in slim['state_dict'].items()
                       if not k.endswith('num_batches_tracked'))),
        global_keep=last['global_keep'], block_keep=last['block_keep'],
        curve=classify.val_curve(work_dir), seconds=clock.wall(), cpu_seconds=clock.cpu())
    atomic_write_json(marker, result)
    return result


def finetune_stage(args, seed, work_dir) -> dict:
    """The shared fine-tune of the slim model the hook exported."""
    cfg = Config.fromfile(osp.join(work_dir, 'p3b', 'finetune.py'))
    ft_dir = osp.join(work_dir, 'finetune')
    shutil.rmtree(ft_dir, ignore_errors=True)
    cfg.randomness = dict(seed=seed)
    classify.set_epochs(cfg, args.finetune_epochs)
    cfg.optim_wrapper.optimizer.lr = args.finetune_lr
    cfg.param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0,
                                end=args.finetune_epochs, eta_min=0.0,
                                convert_to_iter_based=True)]
    runner, clock = classify.train_in_process(cfg, ft_dir, osp.basename(work_dir) + '_ft')
    result = test_correctness(runner)
    result.update(seconds=clock.wall(), cpu_seconds=clock.cpu())
    return result


def row_stage(args, row: dict) -> None:
    """A row's pruning run and fine-tune; writes the row file."""
    work_dir = osp.join(args.work_dir, 'runs', row['name'])
    pruned = prune_stage(args, row, source_files(args.work_dir)[2], work_dir)
    tuned = finetune_stage(args, row['seed'], work_dir)
    RowStore(args.work_dir).write(row['name'], dict(
        method=row['method'], keep_ratio=row['keep_ratio'], seed=row['seed'],
        params=pruned['params'], global_keep=pruned['global_keep'],
        block_keep=pruned['block_keep'], digit=pruned['digit'], acc_pruned=pruned['top1'],
        correct_pruned=pruned['correct'], acc_finetuned=tuned['top1'],
        correct_finetuned=tuned['correct'], curve=pruned['curve'],
        seconds=pruned['seconds'] + tuned['seconds'],
        cpu_seconds=pruned['cpu_seconds'] + tuned['cpu_seconds'],
        history=osp.relpath(osp.join(work_dir, 'p3b', 'history.json'), args.work_dir),
        settings=row_settings(args)))


def run_stage(args, argv, stage: str) -> float:
    """This script with ``--stage stage`` (and the run's arguments) in a
    process of its own; returns its seconds."""
    return RUNNER.tool(osp.relpath(osp.abspath(__file__), ROOT),
                       list(argv) + ['--work-dir', args.work_dir, '--stage', stage],
                       osp.join(args.work_dir, 'logs', f'{stage}.log'))


def run_all(args, argv) -> None:
    """The source stage, then every unfinished row (``--jobs`` at a time)."""
    store = RowStore(args.work_dir)
    if not osp.isfile(source_files(args.work_dir)[1]):
        run_stage(args, argv, 'source')

    def one(row):
        run_stage(args, argv, row['name'])
        return store.read(row['name'])

    run_rows(plan_rows(args), store, one, lambda r: f"pruned {r['acc_pruned']:.2f}, "
             f"fine-tuned {r['acc_finetuned']:.2f}", jobs=args.jobs)


# --------------------------------------------------------------- report
def summarize(args, rows):
    """The report's numbers: per (method, keep) the mean ± std over seeds,
    the paired comparisons and the late benefit."""
    comps = [c for keep in args.keep_ratios for a, b in COMPARISONS
             for c in [compare(rows, keep, a, b, args.n_boot)] if c]
    late = benefit_timeline([read_json(osp.join(args.work_dir, r['history']))
                             for r in rows if r['method'] == 'dense'])
    return p3b_report.group_summary(rows), comps, late


def report(args, rows):
    """The report files from the finished rows: into the work dir and
    ``--results-dir`` (with the row files)."""
    if not rows:
        print('no finished rows yet')
        return
    dense_params = next((r['params'] for r in rows if r['method'] == 'dense'), None)
    summary, comps, late = summarize(args, rows)
    table = p3b_report.render(rows, dense_params, summary, comps, late)
    report_args = {k: v for k, v in vars(args).items() if k not in NOT_REPORTED}
    outs = [args.work_dir] + ([osp.abspath(args.results_dir)] if args.results_dir else [])
    write_report(outs, 'results', table, dict(
        args=dict(report_args, cfg_options=run_options(args)['cfg_options']),
        dense_params=dense_params, summary=summary, comparisons=comps, late_benefit=late,
        rows=[{k: v for k, v in r.items() if k != 'digit'} for r in rows]),
        row_files=RowStore(args.work_dir).files(), json_indent=None)
    for out in {osp.realpath(o) for o in outs} - {osp.realpath(args.work_dir)}:
        for r in rows:  # the histories the report reads, beside the rows
            target = osp.join(out, r['history'])
            os.makedirs(osp.dirname(target), exist_ok=True)
            shutil.copyfile(osp.join(args.work_dir, r['history']), target)
    for out in outs:
        p3b_report.plot(out, rows, summary, comps, late, dense_params,
                        lambda r: read_json(osp.join(args.work_dir, r['history'])))
    print(table)


# -------------------------------------------------------------- dry run
def cost_models(args, store) -> dict:
    """Per row family, the cost of a row (seconds ``rate * prune epochs +
    fine-tune``, fitted on the family's finished rows; before any, the
    README calibration scaled to the epochs, half the probe cost with cheap
    probes) and of a pending fine-tune (the mean of the finished rows that
    kept their ``prune.json``, else the calibration)."""
    models = {}
    for family in ('probes', 'gates'):
        rate, finetune = p3b_report.calibration(family, args.finetune_epochs, args.probe)
        done = [(store.read(r['name'])['seconds'], prune_marker(args.work_dir, r['name']))
                for r in plan_rows(args) if FAMILY[r['method']] == family and store.done(r['name'])]
        measured = [s - read_json(p)['seconds'] for s, p in done if osp.isfile(p)]
        finetune = statistics.fmean(measured) if measured else finetune
        models[family] = CostModel(rate, finetune).fit(
            (s - finetune, args.prune_epochs, finetune) for s, _ in done)
    return models


def dry_run(args) -> float:
    """Print the planned rows in run order with their status, whether the
    source stage is done and the estimated time left; runs nothing.
    Returns the estimated wall seconds left (rows only)."""
    plan, store = plan_rows(args), RowStore(args.work_dir)
    models = cost_models(args, store)
    source, marker, ckpt = source_files(args.work_dir)
    print(f'source stage: done ({source})' if osp.isfile(marker) and osp.isfile(ckpt) else
          'source stage: not done (the run trains it first; not in the estimate below)')
    print(f'{len(plan)} rows in run order (work dir {args.work_dir}):')
    left = []
    for i, row in enumerate(plan):
        cost = models[FAMILY[row['method']]]
        if store.done(row['name']):
            status = f"finished ({store.read(row['name'])['seconds']:.0f} s)"
        elif osp.isfile(prune_marker(args.work_dir, row['name'])):
            left.append(cost.fixed)
            status = f'pruning stage finished, fine-tune pending (~{left[-1]:.0f} s)'
        else:
            left.append(cost.predict(args.prune_epochs))
            status = f'not started (~{left[-1]:.0f} s)'
        print(f"{i + 1:>4}/{len(plan)} {row['name']}: {status}")
    jobs = max(1, min(args.jobs, len(left)))
    wall = max(sum(left) / jobs, max(left, default=0.0))
    print(f'finished: {len(store.finished(r["name"] for r in plan))}/{len(plan)} rows')
    print(f'estimated time left: {sum(left):,.0f} row-seconds on {jobs} job(s) ~ {wall:,.0f} s '
          f'= {wall / 3600:.1f} h ({args.threads} thread(s) per row)')
    for family, methods in (('probes', 'dense benefit / P3B / P3B-frozen'),
                            ('gates', 'uniform / magnitude')):
        cost = models[family]
        basis = f'mean of {cost.fitted_on} finished rows' if cost.fitted_on \
            else 'calibration of the README'
        print(f'  {methods}: {basis}, {cost.predict(args.prune_epochs):.0f} s per row, '
              f'fine-tune {cost.fixed:.0f} s')
    return wall


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.stage:  # one stage, in this process (started by run_all)
        import torch
        torch.set_num_threads(args.threads)
        rows = {r['name']: r for r in plan_rows(args)}
        return source_stage(args) if args.stage == 'source' else row_stage(args, rows[args.stage])
    lock = options_lock(args)
    error = lock.mismatch(run_options(args))
    if error:
        raise SystemExit(f'run_transfer_v2.py: error: {error}')
    if args.dry_run:
        dry_run(args)
        return
    if not args.report_only:
        lock.write(run_options(args))
        run_all(args, argv)
    report(args, [RowStore(args.work_dir).read(r['name']) for r in plan_rows(args)
                  if RowStore(args.work_dir).done(r['name'])])


if __name__ == '__main__':
    main()
