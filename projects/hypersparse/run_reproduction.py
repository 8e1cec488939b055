"""Reproduction of the HyperSparse comparison in the paper's regime (CPU).

ResNet-8 (the paper's CIFAR ResNet at depth 8) on ``HardDigitsDataset``
(scikit-learn's digits, rendered harder: 16x16, rotated, scaled, shifted,
distractor, noise; 1,080 test images, one image is 0.093 %). The schedule
is the reference's, scaled in iterations (``configs/repro_*.py``): warm-up :
fine-tune = 60 : 160, the same fine-tune length for every method, lr steps
at 50 % and 75 % of it, the criterion on the full training set. Every phase
has 1/25.2 of the reference's iterations and λ's growth is compressed by
the same factor (η = 1.05 ** (160 / 40) per epoch); ``--lambda-growth
per-iteration`` keeps the reference's growth per iteration instead.

Stages (each run writes ``<out-dir>/runs/<name>.json`` atomically, its
done-marker; a killed reproduction restarts where it stopped, a run in flight
starts over). The run names leave out ``--schedule``, ``--lambda-growth``
and ``--cfg-options``, so an out dir keeps them (and the training set size
they give) in ``<out-dir>/run_options.json``; a rerun with others is refused
before any work, naming the options that differ:

1. ``warmup``: per seed, dense training at lr 0.1 (one checkpoint per seed,
   shared by every method and sparsity of that seed, as the reference's
   warm-up precedes ART);
2. ``tune``: λ0 of ART + HyperSparse / L1 / L2 from a grid in the paper's
   range, one run each at ``--tune-sparsity`` with ``--tune-seed``,
   selected on the validation split (never the test split);
3. ``main``: dense reference and every (method, sparsity, seed) row: ART +
   HyperSparse / L1 / L2 with the tuned λ0, one-shot magnitude + fine-tune,
   GMP; every final model is scored on the test split (per-image
   correctness stored);
4. ``summary``: table (mean ± sample std, forced switches, ART length), paired
   differences to ART + HyperSparse with 95 % intervals
   (``mmsparse.utils.stats``: t over seeds, bootstrap over test digits),
   ``results.json``, ``results.md``, ``accuracy.png``, ``diff_to_hs.png``.

Usage (the full reproduction, one job on the 2-core machine; ``--jobs N``
runs N rows at a time in forked processes through
:func:`mmsparse.experiment.run_rows`):
    python projects/hypersparse/run_reproduction.py --jobs 2
    python projects/hypersparse/run_reproduction.py --dry-run   # plan + cost
    python projects/hypersparse/run_reproduction.py --report-only  # = --stages summary
Smaller: ``--seeds 0 --sparsities 0.98 --methods art_hs oneshot``;
shorter schedule for a smoke test: ``--schedule warmup_epochs=1
finetune_epochs=2 art_max_epochs=2 prune_window=1`` and
``--cfg-options train_dataloader.dataset.variants=1``.
"""
import argparse
import json
import math
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Optional

import numpy as np
from mmengine.config import Config, DictAction

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from mmsparse.experiment import (OptionsLock, RowStore,  # noqa: E402
                                 artifacts, atomic_write_json,
                                 check_cfg_options, items, markdown_table,
                                 plan, plots, run_rows, tables)
from mmsparse.utils.stats import format_diff  # noqa: E402

CONFIG_DIR = osp.join('projects', 'hypersparse', 'configs')
BASE_CONFIG = 'repro_resnet8_harddigits.py'
CONFIGS = {
    'dense': 'repro_dense.py',
    'art_hs': 'repro_art_hypersparse.py',
    'art_l1': 'repro_art_l1.py',
    'art_l2': 'repro_art_l2.py',
    'oneshot': 'repro_oneshot.py',
    'gmp': 'repro_gmp.py',
}
LABELS = {
    'dense': 'dense (same fine-tune schedule)',
    'art_hs': 'ART + HyperSparse',
    'art_l1': 'ART + L1',
    'art_l2': 'ART + L2',
    'oneshot': 'one-shot magnitude + FT',
    'gmp': 'GMP (cubic)',
}
ART_METHODS = ('art_hs', 'art_l1', 'art_l2')
PRUNING_METHODS = ART_METHODS + ('oneshot', 'gmp')
SCHEDULE_KEYS = ('warmup_epochs', 'finetune_epochs', 'art_max_epochs',
                 'prune_window')
STAGES = ('warmup', 'tune', 'main', 'summary')
#: Cost of one training iteration (ms, batch 64, one thread per run, mmengine
#: pipeline and hooks included), the calibration of the estimate before any
#: run has finished (the measured costs are in the README, "Reproduction");
#: an ART epoch counts as 124 + 124 / 3 iterations at this rate.
MS_PER_ITER = 31.0
#: Config keys every run sets itself (``--cfg-options`` may not change them).
RESERVED_KEYS = ('work_dir', 'experiment_name', 'randomness', 'load_from',
                 'train_cfg.max_epochs', 'default_hooks.checkpoint',
                 'custom_hooks', 'param_scheduler')
#: What the progress line of a finished run shows.
BRIEF_KEYS = ('name', 'test_accuracy', 'val_accuracy', 'switch_reason',
              'seconds', 'cpu_seconds')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seeds', type=int, nargs='+',
                        default=[0, 1, 2, 3, 4])
    parser.add_argument('--sparsities', type=float, nargs='+',
                        default=[0.9, 0.98, 0.995, 0.998])
    parser.add_argument('--methods', nargs='+', default=list(CONFIGS),
                        choices=list(CONFIGS))
    parser.add_argument('--stages', nargs='+', default=list(STAGES),
                        choices=list(STAGES))
    parser.add_argument('--tune-seed', type=int, default=100,
                        help='training seed of the λ0 tuning runs')
    parser.add_argument('--tune-sparsity', type=float, default=0.98)
    parser.add_argument(
        '--lambda-grid', type=float, nargs='+', default=[5e-7, 5e-6, 5e-5],
        help='λ0 candidates (the paper tunes in 5e-7 .. 5e-5)')
    parser.add_argument(
        '--lambda-growth', default='compressed',
        choices=['compressed', 'per-iteration'],
        help="'compressed': η = 1.05 ** (160 / finetune_epochs) per epoch, "
        'λ compressed in iterations like every phase; '
        "'per-iteration': η = 1.05 ** (iters_per_epoch / 782), the "
        "reference's growth per iteration")
    parser.add_argument(
        '--schedule', nargs='+', action=DictAction, default={},
        metavar='KEY=EPOCHS',
        help=f'override the epochs of {SCHEDULE_KEYS} (smoke tests)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, default={},
        metavar='KEY=VALUE',
        help="config overrides applied to every run (mmengine's DictAction, "
        'as tools/train.py)')
    parser.add_argument('--work-dir', default='work_dirs/hypersparse_repro')
    parser.add_argument('--out-dir',
                        default='projects/hypersparse/results/repro')
    parser.add_argument('--jobs', type=int, default=1,
                        help='runs in parallel (processes)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads per run')
    parser.add_argument('--n-boot', type=int, default=2000)
    parser.add_argument(
        '--complete-seeds', action='store_true',
        help='summarize only the seeds of --seeds whose planned main runs '
        '(dense and every --methods x --sparsities row) are all finished, '
        'so that every row of a partial reproduction averages the same seeds')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the plan and the cost estimate only')
    parser.add_argument('--report-only', action='store_true',
                        help='only the summary of the finished runs '
                        '(= --stages summary)')
    args = parser.parse_args(argv)
    if args.report_only:
        args.stages = ['summary']
    return args


def load_schedule(overrides: Dict) -> Dict:
    """The schedule of the base config, with overrides (epochs)."""
    cfg = Config.fromfile(osp.join(ROOT, CONFIG_DIR, BASE_CONFIG))
    schedule = {k: cfg[k] for k in SCHEDULE_KEYS}
    schedule.update(
        ref_iters_per_epoch=cfg.ref_iters_per_epoch,
        ref_eta=cfg.ref_eta,
        ref_finetune_epochs=cfg.ref_finetune_epochs,
        iters_per_epoch=cfg.iters_per_epoch)
    for key, value in overrides.items():
        if key not in SCHEDULE_KEYS or not isinstance(value, int) \
                or value < 1:
            raise ValueError(f'run_reproduction: --schedule takes '
                             f'{SCHEDULE_KEYS} = int >= 1, got {key}={value}')
        schedule[key] = value
    return schedule


def milestones(finetune_epochs: int) -> List[int]:
    """lr steps at 50 % and 75 % of the fine-tuning (increasing, >= 1)."""
    first = max(1, round(0.5 * finetune_epochs))
    return [first, max(first + 1, round(0.75 * finetune_epochs))]


def run_name(kind: str, method: str, sparsity: Optional[float], seed: int,
             lambda_init: Optional[float] = None) -> str:
    name = f'{kind}_{method}'
    if sparsity is not None:
        name += f'_s{sparsity:g}'
    if kind == 'tune':
        name += f'_lam{lambda_init:g}'
    return f'{name}_seed{seed}'


def warmup_checkpoint(work_dir: str, seed: int, schedule: Dict) -> str:
    return osp.join(work_dir, run_name('warmup', 'dense', None, seed),
                    f"epoch_{schedule['warmup_epochs']}.pth")


# --------------------------------------------------------------- one run
def build_config(spec: Dict):
    """The mmengine config of one run (warm-up, tuning or main row)."""
    schedule = spec['schedule']
    method, kind = spec['method'], spec['kind']
    path = BASE_CONFIG if kind == 'warmup' else CONFIGS[method]
    cfg = Config.fromfile(osp.join(ROOT, CONFIG_DIR, path))
    if spec['cfg_options']:
        cfg.merge_from_dict(spec['cfg_options'])
    cfg.work_dir = osp.join(spec['work_dir'], spec['name'])
    cfg.experiment_name = spec['name']
    cfg.randomness = dict(seed=spec['seed'], deterministic=False)
    cfg.default_hooks.logger.interval = 200
    warm, ft = schedule['warmup_epochs'], schedule['finetune_epochs']
    steps = milestones(ft)
    if kind == 'warmup':
        cfg.train_cfg.max_epochs = warm
        cfg.train_cfg.val_interval = warm
        cfg.default_hooks.checkpoint = dict(
            type='CheckpointHook', interval=warm, max_keep_ckpts=1)
        return cfg
    cfg.load_from = warmup_checkpoint(spec['work_dir'], spec['seed'],
                                      schedule)
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=10**6, save_last=False)
    if method == 'dense':
        cfg.train_cfg.max_epochs = ft
        cfg.param_scheduler = dict(
            type='MultiStepLR', by_epoch=True, milestones=steps, gamma=0.1)
        return cfg
    hook = cfg.custom_hooks[-1]
    hook.target_sparsity = spec['sparsity']
    hook.finetune_lr_milestones = steps
    hook.plot = spec['plot']
    if method in ART_METHODS:
        cfg.train_cfg.max_epochs = schedule['art_max_epochs'] + ft
        hook.update(
            lambda_init=spec['lambda_init'],
            eta=spec['eta'],
            warmup=0,
            min_finetune=ft,
            max_finetune=ft)
    elif method == 'oneshot':
        cfg.train_cfg.max_epochs = schedule['prune_window'] + ft
        hook.prune_at = schedule['prune_window']
    elif method == 'gmp':
        cfg.train_cfg.max_epochs = schedule['prune_window'] + ft
        hook.update(begin=0, end=schedule['prune_window'], interval=1)
    return cfg


def _switch(runner) -> Dict:
    """The pruning hook's switch (epoch, reason, ART history), if any."""
    hooks = [h for h in runner.hooks if hasattr(h, 'target_sparsity')]
    if not hooks:
        return {}
    hook = hooks[0]
    out = dict(switch_epoch=hook.switch_unit)
    info = getattr(hook, 'switch_info', None)
    if info:
        out.update(
            switch_reason=info['reason'],
            forced=info['reason'] != 'criterion',
            art_epochs=len(hook.history),
            model_step=info['model_step'],
            art_history=hook.history)
    return out


def run_one(spec: Dict) -> Dict:
    """Train one run in this process and score it; returns its result."""
    import torch
    from mmengine.runner import Runner

    import mmsparse  # noqa: F401
    from mmsparse.art import prunable_weights
    torch.set_num_threads(spec['threads'])
    cfg = build_config(spec)
    start, cpu_start = time.time(), time.process_time()
    runner = Runner.from_cfg(cfg)
    runner.train()
    seconds = time.time() - start
    iters = runner.iter
    result = dict(
        name=spec['name'], kind=spec['kind'], method=spec['method'],
        sparsity=spec['sparsity'], seed=spec['seed'],
        lambda_init=spec.get('lambda_init'), eta=spec.get('eta'),
        epochs=runner.epoch, iterations=iters,
        train_seconds=round(seconds, 1),
        ms_per_iter=round(1000.0 * seconds / max(iters, 1), 2),
        threads=spec['threads'], schedule=spec['schedule'])
    if spec['kind'] == 'warmup':
        result['cpu_seconds'] = round(time.process_time() - cpu_start, 1)
        return result
    model = runner.model.module if hasattr(runner.model, 'module') \
        else runner.model
    result.update(artifacts.weight_sparsity(prunable_weights(model)))
    result['val_accuracy'] = items.image_correctness(
        runner, cfg.val_dataloader)['accuracy']
    if spec['kind'] == 'main':
        test = items.image_correctness(runner, cfg.test_dataloader, 'digit_index')
        result.update(test_accuracy=test['accuracy'],
                      test_correct=test['correct'],
                      test_digit_index=test['items'])
    result.update(_switch(runner))
    result['seconds'] = round(time.time() - start, 1)
    # CPU time of this process: the cost on a loaded machine
    result['cpu_seconds'] = round(time.process_time() - cpu_start, 1)
    return result


def _stages_of(spec: Dict) -> artifacts.CheckpointStages:
    """The warm-ups: done when their result file *and* their checkpoint
    exist (the result files live in the tracked out dir, the checkpoints in
    the work dir, which a new machine does not have); a warm-up run again
    records whether it reproduced the first run's weights, which the
    finished rows of its seed were trained from."""
    return artifacts.CheckpointStages(
        RowStore(spec['out_dir'], 'runs'),
        lambda s: warmup_checkpoint(s['work_dir'], s['seed'], s['schedule'])
        if s['kind'] == 'warmup' else None, tag='warmup', what='warm-up')


def _needs_run(spec: Dict) -> bool:
    return _stages_of(spec).todo(spec)


def _run_spec(spec: Dict) -> Dict:
    """:func:`run_one`, a warm-up with its weights digest."""
    stages = _stages_of(spec)
    previous = stages.previous(spec)
    os.chdir(ROOT)
    return stages.stamp(spec, run_one(spec), previous)


def _brief(result: Dict) -> str:
    return str({k: result.get(k) for k in BRIEF_KEYS})


def run_jobs(specs: List[Dict], jobs: int) -> List[Dict]:
    """Run the specs that need it (:func:`_needs_run`): in this process
    with ``jobs=1``, otherwise in ``jobs`` forked worker processes (each
    run builds its own Runner); returns the results of all specs."""
    if not specs:
        return []
    store = RowStore(specs[0]['out_dir'], 'runs')
    run_rows(specs, store, _run_spec, _brief, jobs=jobs, processes=True,
             todo=_needs_run, line='[done] {text}', skipped=None)
    return [store.read(spec['name']) for spec in specs]


def _job(spec: Dict) -> Dict:
    """One spec through :func:`run_jobs`; its result."""
    return run_jobs([spec], 1)[0]


# ----------------------------------------------------------------- plan
def current_eta(schedule: Dict, growth: str, cfg_options: Dict) -> Dict:
    """η per epoch from the actual training set size."""
    from mmengine.registry import DefaultScope

    import mmsparse  # noqa: F401
    from mmsparse.registry import DATASETS
    cfg = Config.fromfile(osp.join(ROOT, CONFIG_DIR, BASE_CONFIG))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    # the config's registry scope, whatever scope the caller initialised
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
    iters = math.ceil(len(dataset) / cfg.train_dataloader.batch_size)
    ref_iters = schedule['ref_iters_per_epoch']
    # one epoch here stands for this many reference epochs
    if growth == 'compressed':
        ref_epochs = schedule['ref_finetune_epochs'] / schedule[
            'finetune_epochs']
    else:
        ref_epochs = iters / ref_iters
    return dict(
        iters_per_epoch=iters, train_images=len(dataset),
        lambda_growth=growth, ref_epochs_per_epoch=ref_epochs,
        time_compression=ref_epochs * ref_iters / iters,
        eta=schedule['ref_eta']**ref_epochs)


def make_spec(args, schedule, kind, method, seed, sparsity=None,
              lambda_init=None, eta=None) -> Dict:
    return dict(
        kind=kind, method=method, seed=seed, sparsity=sparsity,
        lambda_init=lambda_init, eta=eta,
        name=run_name(kind, method, sparsity, seed, lambda_init),
        schedule=schedule, work_dir=args.work_dir, out_dir=args.out_dir,
        threads=args.threads, cfg_options=args.cfg_options or {},
        plot=seed == min(args.seeds) and kind == 'main')


def select_lambda(results: List[Dict], regularizer_method: str) -> Dict:
    """Best λ0 of one ART variant on the validation split; ties go to the
    run that switched by the criterion, then to the λ0 closest (in log) to
    the reference's 5e-6."""
    rows = [r for r in results if r['method'] == regularizer_method]
    if not rows:
        raise ValueError(f'run_reproduction: no tuning run for '
                         f'{regularizer_method}')
    best = max(rows, key=lambda r: (r['val_accuracy'], not r.get('forced'),
                                    -abs(math.log(r['lambda_init'] / 5e-6))))
    return dict(
        lambda_init=best['lambda_init'], val_accuracy=best['val_accuracy'],
        candidates=[
            dict(lambda_init=r['lambda_init'],
                 val_accuracy=r['val_accuracy'],
                 switch_reason=r.get('switch_reason'),
                 art_epochs=r.get('art_epochs')) for r in sorted(
                     rows, key=lambda r: r['lambda_init'])
        ])


def stage_specs(args, schedule: Dict, stage: str,
                tuning: Optional[Dict] = None) -> List[Dict]:
    """The runs of one stage, in run order. Main rows take λ0 from
    ``tuning`` (None where it is not known yet: enough for names and
    estimates, as λ0 is not part of a main row's name)."""
    art = [m for m in ART_METHODS if m in args.methods]
    eta = schedule['eta']
    if stage == 'warmup':
        seeds = list(args.seeds)
        if 'tune' in args.stages and art and args.tune_seed not in seeds:
            seeds.append(args.tune_seed)
        return [make_spec(args, schedule, 'warmup', 'dense', s)
                for s in seeds]
    if stage == 'tune':
        return [make_spec(args, schedule, 'tune', m, args.tune_seed,
                          args.tune_sparsity, lam, eta)
                for m in art for lam in args.lambda_grid]
    specs = []
    for seed in args.seeds:  # seed-major: partial results are paired
        if 'dense' in args.methods:
            specs.append(make_spec(args, schedule, 'main', 'dense', seed))
        for sparsity in args.sparsities:
            for method in args.methods:
                if method == 'dense':
                    continue
                lam = (tuning or {}).get(method, {}).get('lambda_init') \
                    if method in ART_METHODS else None
                specs.append(make_spec(
                    args, schedule, 'main', method, seed, sparsity, lam,
                    eta if method in ART_METHODS else None))
    return specs


def run_iterations(schedule: Dict, spec: Dict) -> float:
    """Upper bound of one run's iterations (+ criterion passes)."""
    ipe = schedule['iters_per_epoch']
    ft, cap = schedule['finetune_epochs'], schedule['art_max_epochs']
    if spec['kind'] == 'warmup':
        return schedule['warmup_epochs'] * ipe
    if spec['method'] in ART_METHODS:
        # a criterion pass = an eval forward over the training set,
        # about a third of a training epoch
        return (cap + ft) * ipe + cap * ipe / 3
    if spec['method'] == 'dense':
        return ft * ipe
    return (schedule['prune_window'] + ft) * ipe


def estimate_iterations(schedule: Dict, args) -> Dict:
    """Upper bound of training iterations (+ criterion passes) per stage."""
    est = {stage: round(sum(run_iterations(schedule, spec)
                            for spec in stage_specs(args, schedule, stage)))
           if stage in args.stages else 0
           for stage in ('warmup', 'tune', 'main')}
    est['total'] = sum(est.values())
    return est


def print_status(args, schedule: Dict) -> None:
    """``--dry-run``: per stage the finished and pending runs, and the time
    left (upper bound) at the speed measured by this out dir's finished
    runs (median CPU ms per training iteration of the warm-up and dense runs,
    which have no criterion passes), else at ``MS_PER_ITER``."""
    import statistics
    done = load_runs(args.out_dir)
    # CPU time, not wall time: a run that shared its core with other work
    # took longer, not more CPU (one thread per run, --jobs <= cores)
    rates = [1000.0 * r['cpu_seconds'] / r['iterations']
             for r in done.values() if r.get('method') == 'dense'
             and r.get('cpu_seconds') and r.get('iterations')]
    ms = round(statistics.median(rates), 1) if rates else MS_PER_ITER
    source = (f'median CPU time of {len(rates)} finished warm-up / dense '
              'runs' if rates else 'calibration, no finished run yet')
    left = plan.stage_status(
        {stage: stage_specs(args, schedule, stage)
         for stage in ('warmup', 'tune', 'main') if stage in args.stages},
        done, lambda spec: run_iterations(schedule, spec), noun='runs')
    print(f'time left (upper bound): {left:,.0f} iterations at {ms:g} '
          f'ms/iteration ({source}), --jobs {args.jobs}: '
          f'{left * ms / 1000 / 3600 / max(args.jobs, 1):.2f} h', flush=True)


def run_options(args, schedule: Dict) -> Dict:
    """The options the run files depend on and their names leave out: the
    epochs of the schedule, ``--lambda-growth``, ``--cfg-options`` and the
    training set size they give (η and the iterations follow from them)."""
    return dict(locked_options(schedule), cfg_options=args.cfg_options or {})


def locked_options(schedule: Dict) -> Dict:
    """The locked options that a resolved schedule holds."""
    return dict(schedule={k: schedule[k] for k in SCHEDULE_KEYS},
                lambda_growth=schedule['lambda_growth'],
                train_images=schedule['train_images'])


def options_lock(args) -> OptionsLock:
    """The options lock of ``--out-dir`` (where the run files are). An out
    dir made before ``run_options.json`` was kept gives the schedule of its
    first run file; its ``--cfg-options`` were not recorded, so the current
    ones are taken for them (the schedule holds the training set size)."""
    return plan.rows_lock(RowStore(args.out_dir, 'runs'), legacy=lambda first: dict(
        locked_options(first['schedule']), cfg_options=args.cfg_options or {}))


# -------------------------------------------------------------- summary
def load_runs(out_dir: str) -> Dict[str, Dict]:
    """The finished runs' result files of ``out_dir``, by run name (sorted)."""
    store = RowStore(out_dir, 'runs')
    names = [osp.basename(path)[:-len('.json')] for path in store.files()]
    return {name: store.read(name) for name in names}


def _main_runs(args, schedule: Dict, done: Dict[str, Dict]):
    """The main runs to summarise (of the complete seeds with
    ``--complete-seeds``) and the seeds of every finished main run."""
    runs_dir = osp.join(args.out_dir, 'runs')
    main = [r for r in done.values() if r['kind'] == 'main']
    if not main:
        raise RuntimeError('run_reproduction: no finished main run to '
                           f'summarize in {runs_dir}')
    all_seeds = sorted({r['seed'] for r in main})
    if args.complete_seeds:
        keep = tables.complete_seeds(stage_specs(args, schedule, 'main'), done)
        if not keep:
            raise RuntimeError(
                'run_reproduction: --complete-seeds: no seed has all main '
                f'runs of methods {args.methods} x sparsities '
                f'{args.sparsities} in {runs_dir} (seeds with some: '
                f'{all_seeds})')
        main = [r for r in main if r['seed'] in keep]
    return main, all_seeds


def _method_row(method: str, sparsity: float, runs: Dict[int, Dict],
                ref: Dict[int, Dict], n_boot: int) -> Dict:
    """One row of the summary: the runs of ``method`` at ``sparsity``
    by seed, and their paired differences to ART + HyperSparse
    (``ref``, by seed; bootstrap over test digits of the seed-averaged
    correctness)."""
    seeds = sorted(runs)
    ordered = [runs[s] for s in seeds]
    acc = [r['test_accuracy'] for r in ordered]
    mean, std = tables.mean_std(acc)
    row = dict(method=method, sparsity=sparsity, seeds=seeds, accuracy=acc,
               mean=mean, std=std,
               iterations=[r['iterations'] for r in ordered])
    if method in ART_METHODS:
        # training accuracies at the switch: a criterion switch can also
        # come from a collapsing dense model
        last = [(r.get('art_history') or [{}])[-1] for r in ordered]
        row.update(
            lambda_init=runs[min(runs)]['lambda_init'],
            forced=sum(bool(r.get('forced')) for r in runs.values()),
            art_epochs=[r.get('art_epochs') for r in ordered],
            dense_at_switch=[h.get('dense') for h in last],
            best_mean_at_switch=[h.get('best_mean') for h in last])
    if method != 'art_hs':
        diff = tables.contrast(
            runs, ref, items.item_mean_score('test_correct', 'test_digit_index'),
            len(set(ordered[0]['test_digit_index'])), 'test_accuracy', n_boot)
        if diff is not None:
            row['diff_seeds'] = diff['seed_interval']
            row['diff_bootstrap'] = diff['boot']
    return row


def summary_of(args, schedule: Dict, tuning: Dict) -> Dict:
    """results.json: the rows, intervals and cost from the run files."""
    done = load_runs(args.out_dir)
    results = list(done.values())
    main, all_seeds = _main_runs(args, schedule, done)
    groups = tables.by_seed(main, lambda r: (r['method'], r['sparsity']))
    seeds = sorted({r['seed'] for r in main})
    dense = groups.get(('dense', None), {})
    sparsities = sorted({r['sparsity'] for r in main
                         if r['sparsity'] is not None})
    methods = [m for m in PRUNING_METHODS
               if any(r['method'] == m for r in main)]
    cost = dict(
        runs=len(results),
        wall_seconds=round(sum(r.get('seconds') or r.get('train_seconds', 0)
                               for r in results), 1),
        cpu_seconds=round(sum(r.get('cpu_seconds', 0) for r in results), 1))
    summary = dict(schedule=schedule, tuning=tuning,
                   n_test_images=len(main[0]['test_correct']),
                   cost=cost, seeds=seeds,
                   seeds_left_out=sorted(set(all_seeds) - set(seeds)),
                   n_test_digits=len(set(main[0]['test_digit_index'])),
                   dense=dict(seeds=sorted(dense), accuracy=[
                       dense[s]['test_accuracy'] for s in sorted(dense)]),
                   rows=[])
    for method in methods:
        for sparsity in sparsities:
            runs = groups.get((method, sparsity))
            if runs:
                summary['rows'].append(_method_row(
                    method, sparsity, runs,
                    groups.get(('art_hs', sparsity), {}), args.n_boot))
    return summary


def _find(summary: Dict, method: str, sparsity: float) -> Optional[Dict]:
    """The summary row of ``method`` at ``sparsity``, or None."""
    return next((r for r in summary['rows'] if r['method'] == method
                 and r['sparsity'] == sparsity), None)


def _accuracy_cell(row: Optional[Dict]) -> str:
    if row is None:
        return '–'
    text = f"{row['mean']:.2f} ± {row['std']:.2f}"
    if row.get('forced'):
        text += f" ({row['forced']}/{len(row['seeds'])} forced)"
    return text


def _diff_cell(row: Optional[Dict]) -> str:
    if row is None or 'diff_seeds' not in row:
        return '–'
    return (format_diff(row['diff_seeds']) + ' / ' +
            format_diff(row['diff_bootstrap']).split(' ', 1)[1])


def _table_lines(summary: Dict) -> List[str]:
    """The accuracy table and the table of differences to ART +
    HyperSparse."""
    sparsities, methods = _columns(summary)
    dense_acc, left_out = summary['dense']['accuracy'], summary['seeds_left_out']
    header = ['method'] + [f'{100 * s:g} %' for s in sparsities]
    align = 'l' + 'r' * len(sparsities)

    def table(cell, shown):
        return markdown_table(header, [
            [LABELS[m]] + [cell(_find(summary, m, s)) for s in sparsities]
            for m in shown], align)

    caption = (
        f"Test accuracy (%) on {summary['n_test_images']} test images "
        f"({summary['n_test_digits']} held-out digits), mean ± sample std "
        f"(ddof 1) over seeds {summary['seeds']}" + (
            f' (complete seeds only; partial seeds {left_out} left out)'
            if left_out else '') + '. Dense (same fine-tune schedule): '
        + (f'{np.mean(dense_acc):.2f} ± {np.std(dense_acc, ddof=1):.2f}'
           if len(dense_acc) > 1 else
           (f'{dense_acc[0]:.2f}' if dense_acc else '–')) + '.')
    return [caption, ''] + table(_accuracy_cell, methods) + [
        '', 'Difference to ART + HyperSparse (percentage points), 95 % '
        'intervals: t over paired seeds / paired bootstrap over test '
        'digits (seed-averaged correctness).', ''] + table(
            _diff_cell, [m for m in methods if m != 'art_hs'])


def _notes_lines(summary: Dict, args, tuning: Dict) -> List[str]:
    """ART (λ0, forced switches, epochs), the λ0 tuning and the cost."""
    sparsities, _ = _columns(summary)
    cost = summary['cost']
    lines = ['', 'ART: λ0 (tuned), switches forced / runs, ART epochs '
             '(mean, min-max), training accuracy at the switch (dense / '
             'best window of the pruned copy, mean):', '']
    for method in ART_METHODS:
        for s in sparsities:
            row = _find(summary, method, s)
            if row is None:
                continue
            ep = [e for e in row['art_epochs'] if e is not None]
            dense_sw = [v for v in row['dense_at_switch'] if v is not None]
            best_sw = [v for v in row['best_mean_at_switch']
                       if v is not None]
            text = (f"- {LABELS[method]} @ {100 * s:g} %: λ0 = "
                    f"{row['lambda_init']:g}, forced {row['forced']}/"
                    f"{len(row['seeds'])}")
            if ep:
                text += f', ART epochs {np.mean(ep):.1f} ({min(ep)}-{max(ep)})'
            if dense_sw and best_sw:
                text += (f', at the switch {np.mean(dense_sw):.1f} / '
                         f'{np.mean(best_sw):.1f} %')
            lines.append(text)
    if tuning:
        lines += ['', f'λ0 tuning (validation accuracy %, seed '
                  f'{args.tune_seed}, {100 * args.tune_sparsity:g} %):', '']
        for method, sel in tuning.items():
            cands = ', '.join(
                f"{c['lambda_init']:g}: {c['val_accuracy']:.2f}"
                f" ({c['switch_reason']}, {c['art_epochs']} ep)"
                for c in sel['candidates'])
            lines.append(f"- {LABELS[method]}: {cands} → "
                         f"{sel['lambda_init']:g}")
    lines += ['', f"Cost: {cost['runs']} runs, {cost['wall_seconds'] / 3600:.2f} "
              f"h of run wall time (summed over runs), "
              f"{cost['cpu_seconds'] / 3600:.2f} h of CPU time."]
    return lines


def _columns(summary: Dict):
    """The sparsities and the pruning methods of the summary rows."""
    sparsities = sorted({r['sparsity'] for r in summary['rows']})
    methods = [m for m in PRUNING_METHODS
               if any(r['method'] == m for r in summary['rows'])]
    return sparsities, methods


def summarize(args, schedule: Dict, tuning: Dict) -> str:
    """Tables, intervals, plots and results.json from the run files."""
    summary = summary_of(args, schedule, tuning)
    atomic_write_json(osp.join(args.out_dir, 'results.json'), summary,
                      indent=1)
    lines = _table_lines(summary) + _notes_lines(summary, args, tuning)
    table = '\n'.join(lines) + '\n'
    md_path = osp.join(args.out_dir, 'results.md')
    with open(md_path + '.tmp', 'w') as f:
        f.write(table)
    os.replace(md_path + '.tmp', md_path)
    _plots(summary, args.out_dir, *_columns(summary))
    return table


def _plots(summary: Dict, out_dir: str, sparsities, methods) -> None:
    """``accuracy.png`` (accuracy vs sparsity) and ``diff_to_hs.png``
    (the paired differences to ART + HyperSparse, t intervals)."""
    from mmsparse.utils.pruning_plots import plot_comparison
    by_method = {}
    for row in summary['rows']:
        by_method.setdefault(LABELS[row['method']],
                             {})[row['sparsity']] = row['accuracy']
    plot_comparison(
        by_method, osp.join(out_dir, 'accuracy.png'),
        dense=summary['dense']['accuracy'],
        title='hard digits, ResNet-8 (77k prunable weights), '
        f"{summary['n_test_images']} test images")
    fig, ax = plots.pyplot().subplots(figsize=(7, 4.5))
    others = [m for m in methods if m != 'art_hs']
    width = 0.8 / max(len(others), 1)
    for k, method in enumerate(others):
        found = [(i, _find(summary, method, s))
                 for i, s in enumerate(sparsities)]
        found = [(i, r) for i, r in found if r and 'diff_seeds' in r]
        plots.interval_errorbar(
            ax, [plots.dodge(i, k, len(others), width) for i, _ in found],
            [r['diff_seeds'] for _, r in found], fmt='o', capsize=3,
            label=LABELS[method])
    ax.axhline(0, color='k', lw=0.8)
    ax.set_xticks(range(len(sparsities)))
    ax.set_xticklabels([f'{100 * s:g} %' for s in sparsities])
    ax.set_xlabel('sparsity')
    ax.set_ylabel('test accuracy − ART + HyperSparse (pp)')
    ax.set_title('paired difference per seed, 95 % t interval')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    plots.save_figure(fig, osp.join(out_dir, 'diff_to_hs.png'), dpi=120)


# ----------------------------------------------------------------- main
def _stages(args, schedule: Dict) -> Dict:
    """Run the warm-up, tuning and main stages of ``--stages``; returns the
    λ0 tuning (``tuning.json``)."""
    art = [m for m in ART_METHODS if m in args.methods]
    if 'warmup' in args.stages:
        run_jobs(stage_specs(args, schedule, 'warmup'), args.jobs)
    tuning_path = osp.join(args.out_dir, 'tuning.json')
    tuning = {}
    if osp.exists(tuning_path):
        with open(tuning_path) as f:
            tuning = json.load(f)
    if 'tune' in args.stages and art:
        results = run_jobs(stage_specs(args, schedule, 'tune'), args.jobs)
        tuning = {m: select_lambda(results, m) for m in art}
        atomic_write_json(tuning_path, tuning, indent=1)
    if 'main' in args.stages:
        missing = [m for m in art if m not in tuning]
        if missing:
            raise RuntimeError(
                f'run_reproduction: no tuned λ0 for {missing} in '
                f'{tuning_path}; run the tune stage first')
        run_jobs(stage_specs(args, schedule, 'main', tuning), args.jobs)
    return tuning


def main(argv=None) -> None:
    args = parse_args(argv)
    os.chdir(ROOT)
    error = check_cfg_options(
        args.cfg_options or {}, {}, RESERVED_KEYS,
        'use --schedule, --seeds, --methods and --work-dir')
    if error:
        raise SystemExit(f'run_reproduction: {error}')
    schedule = load_schedule(args.schedule or {})
    schedule.update(
        current_eta(schedule, args.lambda_growth, args.cfg_options or {}))
    lock, current = options_lock(args), run_options(args, schedule)
    error = lock.mismatch(current)
    if error:
        raise SystemExit('run_reproduction: ' + error.replace(
            'Use another --work-dir', 'Use another --out-dir (and --work-dir)'))
    est = estimate_iterations(schedule, args)
    print(f"schedule: {schedule}\nupper bound of iterations: {est}; at "
          f"{MS_PER_ITER:g} ms/iteration and --jobs {args.jobs}: "
          f"{est['total'] * MS_PER_ITER / 1000 / 3600 / args.jobs:.2f} h "
          '(ART runs that switch by the criterion are shorter)', flush=True)
    if args.dry_run:
        print_status(args, schedule)
        return
    os.makedirs(osp.join(args.out_dir, 'runs'), exist_ok=True)
    if {'warmup', 'tune', 'main'} & set(args.stages):
        lock.write(current)
    tuning = _stages(args, schedule)
    if 'summary' in args.stages:
        print(summarize(args, schedule, tuning))


if __name__ == '__main__':
    main()
