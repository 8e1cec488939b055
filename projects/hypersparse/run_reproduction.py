"""Reproduction of the HyperSparse comparison in the paper's regime (CPU).

ResNet-8 on ``HardDigitsDataset`` with the reference's schedule scaled in
iterations (``configs/repro_*.py``, :mod:`mmsparse.art.schedule_scaling`).
Stages: ``warmup`` (dense, one checkpoint per seed), ``tune`` (λ0 of each ART
variant on the validation split), ``main`` (dense and every method x sparsity
x seed row, scored on the test split) and ``summary`` (tables, paired
intervals, plots: :mod:`mmsparse.utils.art_report`). Every run writes
``<out-dir>/runs/<name>.json`` atomically, its done-marker; the options the
run names leave out are locked in ``<out-dir>/run_options.json``.
``projects/hypersparse/README.md`` ("Reproduction in the paper's regime")
describes the design, the outputs and the cost.

Usage (``--jobs N``: N rows at a time in forked processes):
    python projects/hypersparse/run_reproduction.py --jobs 2
    python projects/hypersparse/run_reproduction.py --dry-run   # plan + cost
    python projects/hypersparse/run_reproduction.py --report-only  # = --stages summary
Smaller runs and a smoke-test schedule: the README.
"""
import argparse
import functools
import math
import os
import os.path as osp
import statistics
import sys
from typing import Dict, List, Optional

from mmengine.config import Config, DictAction

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from mmsparse.art import schedule_scaling as scaling  # noqa: E402
from mmsparse.experiment import (OptionsLock, RowStore,  # noqa: E402
                                 artifacts, atomic_write_json,
                                 check_cfg_options, classify, items, plan,
                                 run_rows, tables)
from mmsparse.experiment.store import read_json  # noqa: E402
from mmsparse.utils import art_report  # noqa: E402
from mmsparse.utils.art_report import ART_METHODS  # noqa: E402

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
SCHEDULE_KEYS = scaling.SCHEDULE_KEYS
milestones = scaling.finetune_milestones


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add = parser.add_argument
    add('--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4])
    add('--sparsities', type=float, nargs='+', default=[0.9, 0.98, 0.995, 0.998])
    add('--methods', nargs='+', default=list(CONFIGS), choices=list(CONFIGS))
    add('--stages', nargs='+', default=list(STAGES), choices=list(STAGES))
    add('--tune-seed', type=int, default=100, help='training seed of the λ0 tuning runs')
    add('--tune-sparsity', type=float, default=0.98)
    add('--lambda-grid', type=float, nargs='+', default=[5e-7, 5e-6, 5e-5],
        help='λ0 candidates (the paper tunes in 5e-7 .. 5e-5)')
    add('--lambda-growth', default='compressed', choices=['compressed', 'per-iteration'],
        help="'compressed': η = 1.05 ** (160 / finetune_epochs) per epoch, "
        'λ compressed in iterations like every phase; '
        "'per-iteration': η = 1.05 ** (iters_per_epoch / 782), the "
        "reference's growth per iteration")
    add('--schedule', nargs='+', action=DictAction, default={}, metavar='KEY=EPOCHS',
        help=f'override the epochs of {SCHEDULE_KEYS} (smoke tests)')
    add('--cfg-options', nargs='+', action=DictAction, default={}, metavar='KEY=VALUE',
        help="config overrides applied to every run (mmengine's DictAction, "
        'as tools/train.py)')
    add('--work-dir', default='work_dirs/hypersparse_repro')
    add('--out-dir', default='projects/hypersparse/results/repro')
    add('--jobs', type=int, default=1, help='runs in parallel (processes)')
    add('--threads', type=int, default=1, help='torch threads per run')
    add('--n-boot', type=int, default=2000)
    add('--complete-seeds', action='store_true',
        help='summarize only the seeds of --seeds whose planned main runs '
        '(dense and every --methods x --sparsities row) are all finished, '
        'so that every row of a partial reproduction averages the same seeds')
    add('--dry-run', action='store_true', help='print the plan and the cost estimate only')
    add('--report-only', action='store_true',
        help='only the summary of the finished runs (= --stages summary)')
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
    try:
        return scaling.override_epochs(schedule, overrides)
    except ValueError as err:
        raise ValueError(f'run_reproduction: --schedule: {err}') from None


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
    cfg.randomness = dict(seed=spec['seed'], deterministic=False)
    cfg.default_hooks.logger.interval = 200
    warm, ft = schedule['warmup_epochs'], schedule['finetune_epochs']
    steps = milestones(ft)
    if kind == 'warmup':
        cfg.train_cfg.max_epochs = cfg.train_cfg.val_interval = warm
        cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=warm, max_keep_ckpts=1)
        return cfg
    cfg.load_from = warmup_checkpoint(spec['work_dir'], spec['seed'], schedule)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=10**6, save_last=False)
    if method == 'dense':
        cfg.train_cfg.max_epochs = ft
        cfg.param_scheduler = dict(type='MultiStepLR', by_epoch=True, milestones=steps, gamma=0.1)
        return cfg
    hook = cfg.custom_hooks[-1]
    hook.target_sparsity = spec['sparsity']
    hook.finetune_lr_milestones = steps
    hook.plot = spec['plot']
    if method in ART_METHODS:
        cfg.train_cfg.max_epochs = schedule['art_max_epochs'] + ft
        hook.update(lambda_init=spec['lambda_init'], eta=spec['eta'], warmup=0,
                    min_finetune=ft, max_finetune=ft)
    elif method == 'oneshot':
        cfg.train_cfg.max_epochs = schedule['prune_window'] + ft
        hook.prune_at = schedule['prune_window']
    elif method == 'gmp':
        cfg.train_cfg.max_epochs = schedule['prune_window'] + ft
        hook.update(begin=0, end=schedule['prune_window'], interval=1)
    return cfg


def run_one(spec: Dict) -> Dict:
    """Train one run in this process and score it; returns its result."""
    import torch

    import mmsparse  # noqa: F401
    from mmsparse.art import prunable_weights
    os.chdir(ROOT)
    torch.set_num_threads(spec['threads'])
    cfg = build_config(spec)
    runner, clock = classify.train_in_process(
        cfg, osp.join(spec['work_dir'], spec['name']), spec['name'])
    seconds, iters = clock.wall(), runner.iter
    result = dict(
        name=spec['name'], kind=spec['kind'], method=spec['method'], sparsity=spec['sparsity'],
        seed=spec['seed'], lambda_init=spec.get('lambda_init'), eta=spec.get('eta'),
        epochs=runner.epoch, iterations=iters, train_seconds=round(seconds, 1),
        ms_per_iter=round(1000.0 * seconds / max(iters, 1), 2),
        threads=spec['threads'], schedule=spec['schedule'])
    if spec['kind'] == 'warmup':
        result['cpu_seconds'] = round(clock.cpu(), 1)
        return result
    model = runner.model.module if hasattr(runner.model, 'module') else runner.model
    result.update(artifacts.weight_sparsity(prunable_weights(model)))
    result['val_accuracy'] = items.image_correctness(runner, cfg.val_dataloader)['accuracy']
    if spec['kind'] == 'main':
        test = items.image_correctness(runner, cfg.test_dataloader, 'digit_index')
        result.update(test_accuracy=test['accuracy'], test_correct=test['correct'],
                      test_digit_index=test['items'])
    result.update(art_report.switch_record(runner))
    result['seconds'] = round(clock.wall(), 1)
    # CPU time of this process: the cost on a loaded machine
    result['cpu_seconds'] = round(clock.cpu(), 1)
    return result


def _warmup_ckpt(spec: Dict) -> Optional[str]:
    """The checkpoint of a warm-up (None for other runs)."""
    return warmup_checkpoint(spec['work_dir'], spec['seed'], spec['schedule']) \
        if spec['kind'] == 'warmup' else None


def _brief(result: Dict) -> str:
    return str({k: result.get(k) for k in BRIEF_KEYS})


def run_jobs(specs: List[Dict], jobs: int) -> List[Dict]:
    """Run the specs that need it: in this process with ``jobs=1``,
    otherwise in ``jobs`` forked worker processes (each run builds its own
    Runner); returns the results of all specs. The warm-ups are done when
    their result file *and* their checkpoint exist (the result files live
    in the tracked out dir, the checkpoints in the work dir, which a new
    machine does not have); a warm-up run again records whether it
    reproduced the first run's weights, which the finished rows of its seed
    were trained from."""
    if not specs:
        return []
    store = RowStore(specs[0]['out_dir'], 'runs')
    stages = artifacts.CheckpointStages(store, _warmup_ckpt, tag='warmup', what='warm-up')
    run_rows(specs, store, functools.partial(stages.run, run_one), _brief, jobs=jobs,
             processes=True, todo=stages.todo, line='[done] {text}', skipped=None)
    return [store.read(spec['name']) for spec in specs]


def _job(spec: Dict) -> Dict:
    """One spec through :func:`run_jobs`; its result."""
    return run_jobs([spec], 1)[0]


# ----------------------------------------------------------------- plan
def current_eta(schedule: Dict, growth: str, cfg_options: Dict) -> Dict:
    """The training set size (with ``cfg_options``), its iterations per
    epoch and λ's growth per epoch
    (:func:`~mmsparse.art.schedule_scaling.scaled_eta`)."""
    cfg = Config.fromfile(osp.join(ROOT, CONFIG_DIR, BASE_CONFIG))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    images = classify.dataset_size(cfg)
    iters = math.ceil(images / cfg.train_dataloader.batch_size)
    return dict(iters_per_epoch=iters, train_images=images,
                **scaling.scaled_eta(schedule, growth, iters))


def make_spec(args, schedule, kind, method, seed, sparsity=None,
              lambda_init=None, eta=None) -> Dict:
    return dict(
        kind=kind, method=method, seed=seed, sparsity=sparsity,
        lambda_init=lambda_init, eta=eta,
        name=run_name(kind, method, sparsity, seed, lambda_init),
        schedule=schedule, work_dir=args.work_dir, out_dir=args.out_dir,
        threads=args.threads, cfg_options=args.cfg_options or {},
        plot=seed == min(args.seeds) and kind == 'main')


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
        return [make_spec(args, schedule, 'warmup', 'dense', s) for s in seeds]
    if stage == 'tune':
        return [make_spec(args, schedule, 'tune', m, args.tune_seed, args.tune_sparsity, lam,
                          eta) for m in art for lam in args.lambda_grid]
    specs = []
    for seed in args.seeds:  # seed-major: partial results are paired
        if 'dense' in args.methods:
            specs.append(make_spec(args, schedule, 'main', 'dense', seed))
        for sparsity in args.sparsities:
            for method in args.methods:
                if method == 'dense':
                    continue
                art_row = method in ART_METHODS
                lam = (tuning or {}).get(method, {}).get('lambda_init') if art_row else None
                specs.append(make_spec(args, schedule, 'main', method, seed, sparsity, lam,
                                       eta if art_row else None))
    return specs


def spec_iterations(schedule: Dict, spec: Dict) -> float:
    """Upper bound of one run's iterations (+ criterion passes)."""
    method = spec['method']
    kind = 'warmup' if spec['kind'] == 'warmup' else 'art' if method in ART_METHODS \
        else 'dense' if method == 'dense' else 'pruning'
    return scaling.run_iterations(schedule, kind)


def estimate_iterations(schedule: Dict, args) -> Dict:
    """Upper bound of training iterations (+ criterion passes) per stage."""
    est = {stage: round(sum(spec_iterations(schedule, spec)
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
    done = RowStore(args.out_dir, 'runs').by_name()
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
        done, lambda spec: spec_iterations(schedule, spec), noun='runs')
    print(f'time left (upper bound): {left:,.0f} iterations at {ms:g} '
          f'ms/iteration ({source}), --jobs {args.jobs}: '
          f'{left * ms / 1000 / 3600 / max(args.jobs, 1):.2f} h', flush=True)


def locked_options(schedule: Dict, cfg_options: Dict) -> Dict:
    """The options the run files depend on and their names leave out: the
    epochs of the schedule, ``--lambda-growth``, ``--cfg-options`` and the
    training set size they give (η and the iterations follow from them)."""
    return dict(schedule={k: schedule[k] for k in SCHEDULE_KEYS},
                lambda_growth=schedule['lambda_growth'],
                train_images=schedule['train_images'], cfg_options=cfg_options)


def options_lock(args) -> OptionsLock:
    """The options lock of ``--out-dir`` (where the run files are). An out
    dir made before ``run_options.json`` was kept gives the schedule of its
    first run file; its ``--cfg-options`` were not recorded, so the current
    ones are taken for them (the schedule holds the training set size)."""
    return plan.rows_lock(RowStore(args.out_dir, 'runs'), legacy=lambda first: locked_options(
        first['schedule'], args.cfg_options or {}))


# -------------------------------------------------------------- summary
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


def summarize(args, schedule: Dict, tuning: Dict) -> str:
    """Tables, intervals, plots and results.json from the run files."""
    done = RowStore(args.out_dir, 'runs').by_name()
    main, all_seeds = _main_runs(args, schedule, done)
    summary = art_report.summarize_runs(list(done.values()), main, all_seeds, schedule,
                                        tuning, args.n_boot)
    return art_report.write_summary(args.out_dir, summary, args.tune_seed,
                                    args.tune_sparsity)


# ----------------------------------------------------------------- main
def _stages(args, schedule: Dict) -> Dict:
    """Run the warm-up, tuning and main stages of ``--stages``; returns the
    λ0 tuning (``tuning.json``)."""
    art = [m for m in ART_METHODS if m in args.methods]
    if 'warmup' in args.stages:
        run_jobs(stage_specs(args, schedule, 'warmup'), args.jobs)
    tuning_path = osp.join(args.out_dir, 'tuning.json')
    tuning = read_json(tuning_path) if osp.exists(tuning_path) else {}
    if 'tune' in args.stages and art:
        results = run_jobs(stage_specs(args, schedule, 'tune'), args.jobs)
        tuning = {m: scaling.select_lambda(results, m) for m in art}
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
    lock, current = options_lock(args), locked_options(schedule, args.cfg_options or {})
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
