"""VPP toy benchmark: dense vs VPP (temporal) vs image-only vs random patch selection.

    python projects/vpp/run_toy_comparison.py [--toy {hard,closure}]
        [--work-dir DIR] [--results-dir DIR] [--data-root DIR] [--seeds 0 1 2]
        [--pretrain-iters 2000] [--finetune-iters 200]
        [--schedules [paper single]] [--selectors [temporal image random]]
        [--truncate [K ...]] [--pkr-sweep [PKR ...]] [--cfg-options KEY=VALUE ...]
        [--n-boot 1000] [--threads 1] [--dry-run | --report-only]

The protocol follows the paper (dense training, then sparse fine-tuning from
the dense weights) at toy scale, with the user-facing tools only, on the
*hard* toy set (``tools/misc/make_toy_ytvis.py --mode hard``: objects,
background clutter and moving look-alike distractors in the same colours and
texture, so early-block patches do not tell objects from background). With
``--toy closure`` the same protocol runs on the closure set (``--mode
closure``: objects told only by closed outlines) with the 12-block toy ViT
(``configs/toy/*closure*.py``) and the schedules ``closure_paper`` /
``closure_pkr0.4`` (blocks 1 / 3 / 6 / 9) and ``closure_single`` (keep 0.4
at block 1: its object pixels kept are those of the block-1 selection):

1. ``tools/train.py configs/toy/mask2former_vit_toy-ytvis21_hard.py`` for
   ``--pretrain-iters`` (the dense model every row starts from, seed 0);
2. rows, each fine-tuned from that checkpoint for the same
   ``--finetune-iters`` with its own training seed: ``dense`` (continued
   dense training) and, for each schedule, VPP's temporal selector, the
   image-only selector and random patches. Schedules: ``paper`` (Map-SM
   keeping 0.7 at block 1, staged selectors to 0.56 / 0.448 / 0.358 at blocks
   2 / 3 / 4 of 6: ``configs/toy/vpp_mask2former_vit_toy-ytvis21_hard_paper.py``)
   and ``single`` (keep 0.4 from block 1:
   ``configs/toy/vpp_mask2former_vit_toy-ytvis21_hard.py``);
3. ``tools/test.py`` on the held-out videos: AP, AP50, AP75, PKR and the share
   of object pixels whose patch was kept in the pruned frames, plus the
   predictions, matched once per video into
   :class:`~mmsparse.evaluation.functional.ytvis_bootstrap.YTVISVideoRecords`.

Every row is one JSON file ``<work-dir>/rows/<row>.json``, written atomically
when the row is finished (:class:`mmsparse.experiment.RowStore`): it is the
row's done-marker, so a killed run continues with
the first unfinished row when started again with the same arguments (a
half-trained row restarts its training; a trained but untested row is only
tested). The report (``comparison.{md,json,png}``, copied with the row files
into ``--results-dir``) is rebuilt from whatever rows are finished
(``--report-only`` does only that): mean AP over seeds, the difference to the
dense rows with a 95 % paired bootstrap interval over held-out videos (videos
drawn with replacement, AP recomputed, the seed-mean of both rows on the same
draws) and a Student-t interval over seeds, the per-seed bootstrap intervals,
and the selector contrasts (temporal - image-only, temporal - random).
Statistics: :mod:`mmsparse.utils.stats`.

The AP-against-PKR curve: ``--pkr-sweep 0.8 0.6 ...`` (no value: 0.8 0.6
0.5 0.4 0.3 0.2) adds, per ``--selectors`` and seed, rows
``<base>_sweep<p>_<selector>_seed<s>``: the toy's paper schedule (``paper``,
``closure_paper``) with its stages and each keep ratio raised to one power,
``keep_i = paper_i ** g``, g such that a pruned frame's PKR is ``p``
(:func:`mmsparse.utils.vpp_toy_plan.scale_schedule`; the rule is kept in
``run_options.json``). The report adds per selector AP - dense against the
measured PKR (the paper schedule's rows are the point g = 1) and the PKR at
-1 AP with its bootstrap interval (``pkr_curve.png``;
:func:`mmsparse.utils.vpp_toy_report.pkr_curves`).

Model variants: ``--cfg-options KEY=VALUE ...`` (as in ``tools/train.py``)
change the model of **every** row, the dense pre-training included, e.g.
``model.track_head.pixel_decoder.encoder.num_layers=1`` (a one-layer pixel
decoder). A ``model.backbone.*`` key addresses the ViT: on the VPP configs,
whose ViT sits in ``model.backbone.backbone``, it is moved there. Keys must
exist in the configs (typos fail at once), and the keys the script sets
itself (iterations, seeds, data, checkpoints) are refused. A work dir keeps
the options it was made with in ``<work-dir>/run_options.json`` (with
``--pretrain-iters`` and ``--finetune-iters``); running it again with other
values is an error before any work (use another ``--work-dir``). The report
states the options. ``--schedules`` with no value runs no VPP rows, e.g. only
the dense rows and ``--truncate 1`` (the gate: do the deep ViT blocks carry
the AP?).
"""

import argparse
import glob
import os.path as osp
import sys

from mmengine.config import Config, DictAction

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from mmsparse.experiment import (CostModel, RowStore,  # noqa: E402,F401
                                 ToolRunner, describe_options, format_option,
                                 items, normalised, plan, run_rows, tables,
                                 vis, write_report)
from mmsparse.experiment.vis import data_options, heldout_gt  # noqa: E402
from mmsparse.utils import vpp_toy_report as toy_report  # noqa: E402
from mmsparse.utils.vpp_toy_plan import (DATA, DECODER_CONTRASTS,  # noqa: E402
                                         DEFAULT_SCHEDULES, DENSE, METRICS,
                                         PKR_SWEEP, SCHEDULES, SELECTORS,
                                         SWEEP_FIELDS, TOYS, TRUNCATED,
                                         check_model_options, keeps_sweep_rule,
                                         model_options, model_shape,
                                         prune_layers, schedule_toy,
                                         sweep_lock, sweep_schedules)

RUNNER = ToolRunner(ROOT)
_CONFIGS = {}


def load_config(path):
    """The config at ``path`` (relative to the repository root), loaded once."""
    if path not in _CONFIGS:
        _CONFIGS[path] = Config.fromfile(osp.join(ROOT, path), import_custom_modules=False)
    return _CONFIGS[path]


def run(cmd, log_file):
    """Run a tool with its output into ``log_file``; returns seconds."""
    return RUNNER(cmd, log_file)


def train(config, work, iters, options, seed, load_from=None):
    """Train (or reuse the final checkpoint); returns (checkpoint, seconds)."""
    return vis.train_iters(run, config, work, iters, options, seed, load_from)


def sweep(args):
    """The schedules of ``--pkr-sweep`` (:func:`sweep_schedules`; none
    without it)."""
    toy, targets = TOYS[getattr(args, 'toy', 'hard')], getattr(args, 'pkr_sweep', None)
    if not targets:
        return []
    depth = model_shape(load_config(toy['dense']), getattr(args, 'cfg_options', None))[0]
    base = toy['sweep_base']
    return sweep_schedules(base, load_config(SCHEDULES[base]['config']), targets, depth)


def plan_rows(args):
    """The rows of the run; ``options`` of a row: the ``--cfg-options`` (for
    its config), then the row's own (which win: selector, truncation, the
    sweep's keep ratios)."""
    cfg_options = getattr(args, 'cfg_options', None) or {}
    dense = TOYS[getattr(args, 'toy', 'hard')]['dense']
    rows = []

    def add(name, schedule, selector, seed, config, options, **extra):
        rows.append(dict(name=name, schedule=schedule, selector=selector, seed=seed,
                         config=config, cfg_options=cfg_options, **extra,
                         options=model_options(load_config(config), cfg_options) + options))
    for seed in args.seeds:
        add(f'dense_seed{seed}', 'dense', 'dense', seed, dense, [])
        for schedule in args.schedules:
            for sel in args.selectors:
                add(f'{schedule}_{sel}_seed{seed}', schedule, sel, seed,
                    SCHEDULES[schedule]['config'], [f'model.backbone.selector={sel}'])
        for point in sweep(args):
            for sel in args.selectors:
                add(f"{point['schedule']}_{sel}_seed{seed}", point['schedule'], sel, seed,
                    point['config'], [format_option('model.backbone.keep_ratio',
                                                    point['keep_ratio']),
                                      f'model.backbone.selector={sel}'],
                    **{k: point[k] for k in SWEEP_FIELDS})
        for blocks in args.truncate:
            add(f'{TRUNCATED}{blocks}_seed{seed}', f'{TRUNCATED}{blocks}', 'truncated', seed,
                dense, [f'model.backbone.arch.num_layers={blocks}'])
    return rows


def run_options(args, kept_rule=False):
    """What a work dir's rows depend on beyond their own row (JSON-normalised):
    with ``--pkr-sweep`` or when the work dir keeps one, the sweep's rule."""
    rule = args.pkr_sweep is not None or kept_rule
    return normalised(dict(cfg_options=args.cfg_options or {},
                           pretrain_iters=args.pretrain_iters,
                           finetune_iters=args.finetune_iters, toy=args.toy,
                           **(dict(pkr_sweep=sweep_lock(args.toy)) if rule else {})))


def options_lock(work, toy='hard'):
    """The work dir's option lock; a work dir of the script before it wrote
    ``run_options.json`` is read from its first row file (iterations, no
    --cfg-options); only rows or checkpoints lock it. A work dir without a
    sweep rule takes the current one of ``toy`` (it holds no sweep rows)."""
    return plan.rows_lock(
        RowStore(work), legacy=lambda row: dict(
            cfg_options=row.get('cfg_options', {}), pretrain_iters=row['pretrain_iters'],
            finetune_iters=row['finetune_iters']),
        holds_work=lambda: bool(glob.glob(osp.join(work, '*', '*.pth'))),
        defaults=dict(toy='hard', pkr_sweep=sweep_lock(toy)))


def run_row(row, args, data_root, pre_ckpt, gt, work):
    run_dir = osp.join(work, row['name'])
    opts = data_options(data_root) + row['options']
    ckpt, train_time = train(row['config'], run_dir, args.finetune_iters, opts,
                             row['seed'], load_from=pre_ckpt)
    metrics, records, stats, test_time = items.scored_video_test(
        run, ROOT, row['config'], ckpt, run_dir, opts, gt, row['name'])
    return dict(
        row, finetune_iters=args.finetune_iters, pretrain_iters=args.pretrain_iters,
        **stats, pkr=metrics.get('vpp_pkr', 1.0), keep=metrics.get('vpp_keep', 1.0),
        fg_recall=metrics.get('vpp_fg_recall', 1.0), **items.timings(train_time, test_time),
        records=records.to_dict())


# ----------------------------------------------------------------------------- report
def summarize(results, n_boot, toy='hard', num_frames=DATA['num_frames']):
    """Aggregate finished rows: means over seeds, paired intervals and the
    PKR curves (of the toy's sweep)."""
    by_key = tables.by_seed(results, lambda r: (r['schedule'], r['selector']))
    records, scores = items.video_scores(results)

    def num_videos(row):
        return records[row['name']].num_videos

    def diff(a, b, per_seed=False):  # rows by seed, on the seeds both have
        return tables.contrast(a, b, tables.mean_row_scores(scores), num_videos, 'AP', n_boot,
                               per_seed=per_seed)

    dense = by_key.get(('dense', 'dense'), {})
    groups = []
    for (schedule, selector), per_seed in sorted(
            by_key.items(), key=lambda item: toy_report.group_order(*item[0])):
        seeds = sorted(per_seed)
        g = dict(schedule=schedule, selector=selector, seeds=seeds,
                 **tables.seed_means(per_seed, METRICS + ('pkr', 'keep', 'fg_recall')),
                 fg_recall_per_seed={s: per_seed[s]['fg_recall'] for s in seeds},
                 **{k: per_seed[seeds[0]][k] for k in SWEEP_FIELDS if k in per_seed[seeds[0]]})
        c = diff(per_seed, dense, per_seed=True) if selector != 'dense' else None
        if c is not None:
            g['diff_boot'], g['diff_seeds'], g['per_seed'] = (
                c['boot'], c['seed_interval'], c['per_seed'])
        groups.append(g)
    pairs = [(s, 'temporal', s, other, {}) for s in SCHEDULES for other in ('image', 'random')]
    pairs += [(a, 'temporal', b, 'temporal', dict(
        schedule=f'{a} - {b}', label=f"{SCHEDULES[a]['label']} - {SCHEDULES[b]['label']}"))
        for a, b in DECODER_CONTRASTS]
    contrasts = []
    for sched_a, sel_a, sched_b, sel_b, head in pairs:
        c = diff(by_key.get((sched_a, sel_a), {}), by_key.get((sched_b, sel_b), {}))
        if c is not None:
            entry = dict(schedule=head.get('schedule', sched_a), a=sel_a, b=sel_b,
                         seeds=c['seeds'])
            if 'label' in head:
                entry['label'] = head['label']
            contrasts.append(dict(entry, boot=c['boot'], seed_interval=c['seed_interval']))
    draws = {k: toy_report.group_draws(by_key[k], dense, tables.mean_row_scores(scores),
                                       num_videos, n_boot)
             for k in toy_report.curve_keys(groups, TOYS[toy]['sweep_base'])}
    return groups, contrasts, toy_report.pkr_curves(groups, draws, num_frames)


def report(work, results_dir, args, meta):
    store = RowStore(work)
    files, results = store.files(), store.all()
    if not results:
        print('no finished rows yet')
        return
    toy = meta.get('toy', 'hard')
    groups, contrasts, curves = summarize(results, args.n_boot, toy, meta['num_frames'])
    meta = dict(meta, seeds=sorted({r['seed'] for r in results}),
                finetune_iters=results[0]['finetune_iters'],
                pretrain_iters=results[0]['pretrain_iters'],
                heldout_videos=len(results[0]['records']['video_ids']))
    table = '\n'.join([toy_report.render_tables(groups, contrasts, meta)]
                      + toy_report.curve_lines(curves, meta))
    summary = dict(meta=meta, groups=groups, contrasts=contrasts, rows=tables.without(results),
                   row_seconds_total=tables.seconds_total(results),
                   **(dict(pkr_curves=curves) if curves else {}))

    def figures(path):
        toy_report.plot(groups, path, meta['vit_depth'], toy)
        if curves:
            toy_report.plot_curves(curves, osp.join(osp.dirname(path), 'pkr_curve.png'),
                                   meta['num_frames'], toy)
    write_report([work, results_dir], 'comparison', table, summary, plot=figures,
                 row_files=files)
    print(table)
    print(f'wrote {results_dir}/comparison.{{md,json,png}}'
          + (', pkr_curve.png' if curves else '') + ' and rows/')


def estimate(rows, done, args, work):
    """Seconds left, from a cost model fitted on the finished rows (or the
    defaults), and the model's seconds per iteration and per test."""
    store = RowStore(work)
    cost = CostModel(args.sec_per_iter, 170.).fit(
        (r['train_seconds'], r['finetune_iters'], r['test_seconds'])
        for r in map(store.read, sorted(done)))
    left = cost.left(args.finetune_iters for r in rows if r['name'] not in done)
    if not osp.exists(osp.join(work, 'dense_pretrain', f'iter_{args.pretrain_iters}.pth')):
        left += args.sec_per_iter * args.pretrain_iters
    return left, cost.rate, cost.fixed


def parse_args(argv):
    parser = argparse.ArgumentParser(prog='run_toy_comparison.py',
                                     description=__doc__.split('\n')[0])
    config_depth = model_shape(load_config(DENSE), {})[0]  # ViT blocks of the dense toy config
    parser.add_argument('--toy', choices=list(TOYS), default='hard',
                        help='toy set: its dense config, data and default schedules and '
                        "folders ('closure': the 12-block ViT on "
                        '`make_toy_ytvis.py --mode closure`, schedules closure_*); kept in '
                        '<work-dir>/run_options.json')
    parser.add_argument('--work-dir', help='default: the toy\'s (work_dirs/vpp_toy_benchmark '
                        'for hard, work_dirs/vpp_toy_closure for closure)')
    parser.add_argument('--results-dir', help='default: projects/vpp/results/toy_<toy>')
    parser.add_argument('--data-root', help='default: data/toy_ytvis21_<toy>/ (made when '
                        'missing; an existing set must be of the toy\'s mode)')
    parser.add_argument('--pretrain-iters', type=int, default=2000)
    parser.add_argument('--finetune-iters', type=int, default=200)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--schedules', nargs='*', choices=list(SCHEDULES),
                        help='VPP schedules of the pruned rows (default: '
                        f"{' '.join(DEFAULT_SCHEDULES)}, with --toy closure "
                        f"{' '.join(TOYS['closure']['schedules'])}; the paper_* pixel-decoder "
                        'variants with '
                        '--selectors temporal); with no value, no pruned rows (e.g. only the '
                        'dense rows and --truncate)')
    parser.add_argument('--selectors', nargs='*', default=list(SELECTORS),
                        choices=list(SELECTORS))
    parser.add_argument('--truncate', type=int, nargs='*', default=[],
                        help='diagnostic rows: the dense model cut to its first K ViT '
                        f'blocks (1-{config_depth - 1} of the {config_depth}-block toy, or of the '
                        'depth --cfg-options set), fine-tuned like the other rows')
    parser.add_argument('--pkr-sweep', type=float, nargs='*', metavar='PKR',
                        help='the AP-against-PKR curve: rows of the toy\'s paper schedule scaled '
                        'to these PKRs of a pruned frame (keep_i = paper_i ** g), for each '
                        f"--selectors; with no value {' '.join(map(str, PKR_SWEEP))}")
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, default={},
        help='KEY=VALUE config overrides for the model of every row, the dense pre-training '
        'included (as in tools/train.py), e.g. '
        'model.track_head.pixel_decoder.encoder.num_layers=1; model.backbone.* keys address '
        'the ViT (model.backbone.backbone.* on the VPP configs). Kept in '
        '<work-dir>/run_options.json: a work dir runs with one set of options only')
    parser.add_argument('--n-boot', type=int, default=1000)
    parser.add_argument(
        '--threads', type=int, default=1,
        help='OMP_NUM_THREADS of the runs (2 on an idle 2-core machine; on a shared one '
        '1: contended OpenMP threads spin, 2 threads ran 6x slower than 1 at load 9)')
    parser.add_argument('--sec-per-iter', type=float, default=1.5,
                        help='training speed assumed by the estimate before a row finished')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the rows, which are finished, and the time left')
    parser.add_argument('--report-only', action='store_true',
                        help='only rebuild the report from the finished rows')
    args = parser.parse_args(argv)
    toy = TOYS[args.toy]
    for key in ('work_dir', 'results_dir', 'data_root'):
        if getattr(args, key) is None:
            setattr(args, key, toy[key])
    if args.schedules is None:
        args.schedules = list(toy['schedules'])
    if args.pkr_sweep == []:
        args.pkr_sweep = list(PKR_SWEEP)
    return parser, args


def check_args(args):
    """Error text for arguments the rows cannot take, else None; returns the
    model shape (ViT depth, embed dim, decoder layers) too."""
    if args.pretrain_iters < 1 or args.finetune_iters < 1:
        return 'iterations must be >= 1', None
    other = [s for s in args.schedules if schedule_toy(s) != args.toy]
    if other:
        return (f'--schedules {" ".join(other)}: not of --toy {args.toy} (its schedules: '
                f"{' '.join(s for s in SCHEDULES if schedule_toy(s) == args.toy)}"
                ')'), None
    dense = TOYS[args.toy]['dense']
    pruned = list(args.schedules) + [TOYS[args.toy]['sweep_base']] * bool(args.pkr_sweep)
    configs = [dense] + [SCHEDULES[sched]['config'] for sched in pruned]
    error = check_model_options({c: load_config(c) for c in configs}, args.cfg_options)
    if error:
        return error, None
    shape = model_shape(load_config(dense), args.cfg_options)
    depth = shape[0]
    for sched in pruned:
        layers = prune_layers(load_config(SCHEDULES[sched]['config']))
        if max(layers) >= depth:
            return (f"{'--schedules' if sched in args.schedules else '--pkr-sweep'} {sched}: "
                    f'prunes at blocks {layers}, beyond the {depth}-block ViT the '
                    '--cfg-options set'), None
    if any(not 1 <= k < depth for k in args.truncate):
        return (f'--truncate: block counts must be in 1..{depth - 1} (the ViT has '
                f'{depth} blocks), got {args.truncate}'), None
    try:
        sweep(args)
    except ValueError as err:
        return str(err), None
    return None, shape


def dry_run(rows, done, args, work, current):
    left, per_iter, test_s = estimate(rows, done, args, work)
    plan.print_rows(rows, done)
    print(f'{len(done)}/{len(rows)} rows finished; about {left / 3600:.1f} h left '
          f'({per_iter:.2f} s/iter, {test_s:.0f} s per test); model options: '
          f"{describe_options(current['cfg_options'])}")


def make_data(data_root, work, toy='hard'):
    """The ``toy`` set at ``data_root``: made (``DATA``) when missing, else
    checked to be of that mode."""
    vis.toy_data(run, ROOT, data_root, toy, DATA, osp.join(work, 'make_data.log'))


def main(argv=None):
    parser, args = parse_args(argv)
    RUNNER.env['OMP_NUM_THREADS'] = str(args.threads)
    error, shape = check_args(args)
    if error:
        parser.error(error)
    work = osp.join(ROOT, args.work_dir)
    results_dir = osp.join(ROOT, args.results_dir)
    data_root = osp.join(args.data_root, '')
    current, lock = run_options(args, keeps_sweep_rule(work)), options_lock(work, args.toy)
    error = lock.mismatch(current)
    if error:
        parser.error(error)
    depth, embed_dims, decoder_layers = shape
    meta = dict(num_frames=DATA['num_frames'], n_boot=args.n_boot, data=DATA,
                cfg_options=current['cfg_options'], vit_depth=depth, embed_dims=embed_dims,
                decoder_layers=decoder_layers, toy=args.toy)
    rows, store = plan_rows(args), RowStore(work)
    done = store.finished(r['name'] for r in rows)
    if args.dry_run:
        return dry_run(rows, done, args, work, current)
    if args.report_only:
        return report(work, results_dir, args, meta)
    lock.write(current)
    try:
        make_data(data_root, work, args.toy)
    except ValueError as err:
        parser.error(str(err))
    gt = heldout_gt(osp.join(ROOT, data_root))
    dense = TOYS[args.toy]['dense']
    pre_ckpt, _ = train(dense, osp.join(work, 'dense_pretrain'), args.pretrain_iters, data_options(
        data_root) + model_options(load_config(dense), args.cfg_options), seed=0)
    run_rows(rows, store, lambda row: run_row(row, args, data_root, pre_ckpt, gt, work),
             lambda result: f"AP {result['AP']:.3f} PKR {result['pkr']:.3f} "
                            f"object pixels kept {result['fg_recall']:.3f}")
    report(work, results_dir, args, meta)


if __name__ == '__main__':
    main()
