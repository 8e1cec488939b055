"""Toy composed pipeline: P3B on classification -> slim ViT -> VIS with VPP.

    python projects/composed/run_toy_pipeline.py [--work-dir DIR] [--results-dir DIR]
        [--seeds 0 1 2] [--p3b-keep 0.5] [--cls-epochs 10] [--p3b-epochs 8]
        [--slim-finetune-epochs 4] [--pretrain-iters 300] [--finetune-iters 150]
        [--art-iters 300] [--cfg-options KEY=VALUE ...] [--n-boot 1000] [--threads 1]
        [--reuse-dense OTHER_WORK_DIR] [--dry-run | --report-only]

The plan (user tools only, configs of ``configs/composed/toy/``; see
``projects/composed/README.md``): a ``classifiers`` row (the toy VIS ViT
trained as a classifier on toy-shape crops, P3B keeping ``--p3b-keep`` of its
parameters, the slim classifier fine-tuned, and the known-bad uniform-slim
baseline of the same budget), then per seed the VIS rows ``vis_<row>_seed<s>``:
dense, slim, slim_uniform (``--pretrain-iters`` from the classifier weights,
then ``--finetune-iters``), slim_vpp (the slim pre-training fine-tuned with
VPP) and slim_vpp_art (ART 90 % on the trained slim + VPP model, and its
sparse export), each tested on the held-out videos (per-video records kept
in the row for the paired bootstrap over videos).

On the harness (:mod:`mmsparse.experiment`): a row's file
``<work-dir>/rows/<row>.json`` is its done-marker, every stage inside a row
is finished when its output exists (a killed run resumes); the options the
stages depend on (all but :data:`FREE_OPTIONS`) are locked in
``run_options.json``; ``--reuse-dense`` links the finished dense stages of a
work dir made with the same :data:`DENSE_OPTIONS`. The report, ``--dry-run``,
``--report-only`` and the outputs: ``projects/composed/README.md`` ("Toy
accuracy pipeline").
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from mmsparse.evaluation.functional.ytvis_bootstrap import \
    YTVISVideoRecords  # noqa: E402
from mmsparse.experiment import (OptionsLock, RowStore,  # noqa: E402
                                 ToolRunner, check_cfg_options,
                                 describe_options, format_option, hook_options,
                                 items, normalised, plan, run_rows, stages,
                                 tables, write_report)
from mmsparse.experiment.stages import epoch_options  # noqa: E402
from mmsparse.experiment.store import read_json  # noqa: E402
from mmsparse.experiment.vis import (data_options, train_iters,  # noqa: E402
                                     wrapped_test)
from mmsparse.utils import composed_report  # noqa: E402
from mmsparse.utils.stats import paired_bootstrap  # noqa: E402

ART, CLASSIFIERS, LABELS = composed_report.ART, composed_report.CLASSIFIERS, composed_report.LABELS
TOY = 'configs/composed/toy/'
CLS = TOY + 'deit-toy_shapes-cls.py'
P3B_CLS = TOY + 'p3b_deit-toy_shapes-cls.py'
VIS = dict(dense=TOY + 'cls-init_mask2former_vit_toy-ytvis21.py',
           slim=TOY + 'p3b_mask2former_vit_toy-ytvis21.py',
           slim_uniform=TOY + 'p3b_mask2former_vit_toy-ytvis21.py',
           slim_vpp=TOY + 'p3b-vpp_mask2former_vit_toy-ytvis21.py',
           slim_vpp_art=TOY + 'art-p3b-vpp_mask2former_vit_toy-ytvis21.py')
DENSE_CLS = 'dense_cls'
#: the options the dense stages depend on (data, data making, classifier
#: epochs, VIS iterations, model options)
DENSE_OPTIONS = ('vis_data', 'cls_data', 'vis_videos', 'heldout_ratio', 'cls_train_videos',
                 'cls_epochs', 'pretrain_iters', 'finetune_iters', 'cfg_options')
#: options that do not change what a work dir's stages hold
FREE_OPTIONS = ('seeds', 'threads', 'n_boot', 'reuse_dense', 'work_dir', 'results_dir',
                'dry_run', 'report_only')
#: the file ``test_vis`` writes into a VIS stage (its done-marker)
VIS_PREDICTIONS = osp.join('test', 'predictions.json')
#: ``--cfg-options`` keys the script sets itself
RESERVED_KEYS = ('train_cfg', 'randomness', 'load_from', 'resume', 'val_cfg', 'val_dataloader',
                 'val_evaluator', 'test_evaluator', 'default_hooks.checkpoint', 'custom_hooks',
                 'custom_imports', 'model.backbone', 'train_dataloader.dataset.data_root',
                 'test_dataloader.dataset.data_root')
RUNNER = ToolRunner(ROOT, pythonpath=ROOT)


def run(cmd, log_file):
    """Run a tool with its output into ``log_file``; returns seconds."""
    return RUNNER(cmd, log_file)


def schedule_options(epochs, interval):
    """P3BHook's schedule scaled to ``epochs`` (start at 1/8, goal keep
    ratio at 5/8, slim export at the end)."""
    start = max(1, epochs // 8)
    sparse = max(start + 1, (5 * epochs) // 8)
    return [f'train_cfg.max_epochs={epochs}', f'train_cfg.val_interval={epochs}',
            f'custom_hooks.0.prune_start={start}', f'custom_hooks.0.prune_sparse={sparse}',
            f'custom_hooks.0.prune_finalize={epochs}',
            f'custom_hooks.0.update_interval={interval}']


def art_options(config, iters):
    """ARTHook of ``config`` scaled to an ``iters`` run: a third dense
    warm-up, ART steps every ``iters // 30``, at least a third fine-tuning
    under the mask."""
    return hook_options(Config.fromfile(osp.join(ROOT, config)), 'ARTHook', dict(
        warmup=iters // 3, interval=max(1, iters // 30), min_finetune=iters // 3))


def vis_stage(row, seed, pretrain=False):
    """Work-dir entry (and step-time key) of a VIS stage of one seed."""
    return f'vis_{row}_pretrain_seed{seed}' if pretrain else f'vis_{row}_seed{seed}'


def vis_rows(args):
    """The VIS rows of a seed, in report order."""
    return [r for r in VIS
            if (r != ART or args.art_iters) and (r != 'slim_uniform' or args.uniform)]


def row_iters(args, row):
    """Training iterations a VIS row runs itself (its cost units)."""
    if row == ART:
        return args.art_iters
    return args.finetune_iters + (0 if row == 'slim_vpp' else args.pretrain_iters)


def plan_rows(args):
    """The rows: the classifier stages, then per seed the VIS rows."""
    return [dict(name=CLASSIFIERS, kind=CLASSIFIERS)] + [
        dict(name=vis_stage(row, seed), kind=row, seed=seed, iters=row_iters(args, row))
        for seed in args.seeds for row in vis_rows(args)]


def dense_stages(args):
    """The dense-only stages: ``(work-dir entry, files that mark it finished)``."""
    out = [(DENSE_CLS, (f'epoch_{args.cls_epochs}.pth', 'accuracy.json'))]
    for seed in args.seeds:
        out += [(vis_stage('dense', seed, True), (f'iter_{args.pretrain_iters}.pth', )),
                (vis_stage('dense', seed), (f'iter_{args.finetune_iters}.pth', VIS_PREDICTIONS))]
    return out


class PipelineLock(OptionsLock):
    """The options a work dir was made with (``run_options.json``, else the
    ``args`` of its ``results.json``; options added to the script later have
    their defaults); data roots compare as paths."""

    def __init__(self, work, defaults):
        results = osp.join(work, 'results.json')
        super().__init__(work, free=FREE_OPTIONS, defaults=defaults, legacy=lambda: read_json(
            results)['args'] if osp.isfile(results) else None, paths=('vis_data', 'cls_data'),
            root=ROOT)


class Pipeline:
    """The stages of one work dir: paths, options and stage seconds.

    Args:
        args (argparse.Namespace): The script's arguments.
        work (str): The work dir (absolute).
    """

    def __init__(self, args, work):
        self.args, self.work = args, work
        self.times = stages.StageTimes(osp.join(work, 'seconds.json'))
        self.vis_data, self.cls_data = (d.rstrip('/') + '/' for d in (args.vis_data, args.cls_data))
        self.cls_opts, self.vis_opts = data_options(self.cls_data), data_options(self.vis_data)
        self.dense_cls = osp.join(work, DENSE_CLS, f'epoch_{args.cls_epochs}.pth')
        self.export = osp.join(work, 'p3b_cls', 'p3b')
        n = args.slim_finetune_epochs
        self.slim_weights = osp.join(work, 'p3b_cls', 'finetune', f'epoch_{n}.pth') if n \
            else osp.join(self.export, 'slim_model.pth')
        self.uniform_epochs = args.p3b_epochs + n
        self.uniform_export = osp.join(work, 'uniform_cls', 'p3b')
        self.uniform_weights = osp.join(work, 'uniform_cls', 'finetune',
                                        f'epoch_{self.uniform_epochs}.pth')

    def train(self, config, work, marker, options, key):
        return stages.train_stage(run, config, work, osp.join(work, marker), options,
                                  self.times, key)

    def accuracy(self, config, ckpt, work, key):
        """Top-1 accuracy of a classifier checkpoint (cached)."""
        return stages.test_stage(run, config, ckpt, work, self.cls_opts, osp.join(
            work, 'accuracy.json'), self.times, key)['accuracy/top1']

    def make_data(self):
        a = self.args
        if not osp.exists(osp.join(ROOT, self.vis_data, 'annotations',
                                   'youtube_vis_2021_heldout.json')):
            run([sys.executable, 'tools/misc/make_toy_ytvis.py', '--out', self.vis_data,
                 '--convert', '--num-videos', str(a.vis_videos), '--heldout-ratio',
                 str(a.heldout_ratio)], osp.join(self.work, 'make_vis_data.log'))
        if not osp.isdir(osp.join(ROOT, self.cls_data, 'test')):
            run([sys.executable, 'projects/composed/toy_shapes_cls.py', '--out', self.cls_data,
                 '--train-videos', str(a.cls_train_videos)],
                osp.join(self.work, 'make_cls_data.log'))

    def classifiers(self, row):
        """The dense classifier, P3B, the slim fine-tune and the uniform
        baseline; their top-1 and P3B's keep ratio."""
        a, opts, p3b_dir = self.args, self.cls_opts, osp.join(self.work, 'p3b_cls')
        dense_dir, finetune = osp.dirname(self.dense_cls), osp.join(self.export, 'finetune.py')
        self.train(CLS, dense_dir, self.dense_cls, opts + epoch_options(a.cls_epochs), DENSE_CLS)
        self.train(P3B_CLS, p3b_dir, osp.join('p3b', 'slim_model.pth'),
                   opts + schedule_options(a.p3b_epochs, a.p3b_update_interval) +
                   [f'load_from={self.dense_cls}', f'custom_hooks.0.keep_ratio={a.p3b_keep}',
                    f'default_hooks.checkpoint.interval={a.p3b_epochs}'], 'p3b_cls')
        if a.slim_finetune_epochs:
            self.train(finetune, osp.dirname(self.slim_weights), self.slim_weights,
                       opts + epoch_options(a.slim_finetune_epochs), 'slim_cls_finetune')
        acc = dict(dense=self.accuracy(CLS, self.dense_cls, dense_dir, 'test_dense_cls'),
                   slim=self.accuracy(finetune, self.slim_weights, osp.join(p3b_dir, 'slim_test'),
                                      'test_slim_cls'))
        keep = read_json(osp.join(self.export, 'history.json'))['history'][-1]['global_keep']
        if a.uniform:  # the same budget with one keep ratio for every block
            uniform_dir = osp.dirname(self.uniform_export)
            if not osp.exists(osp.join(self.uniform_export, 'slim_model.pth')):
                self.times['uniform_cut'] = run(
                    [sys.executable, 'projects/composed/uniform_slim_export.py', CLS,
                     self.dense_cls, '--out', self.uniform_export, '--keep', str(keep),
                     '--score', 'magnitude'], osp.join(uniform_dir, 'uniform_cut.log'))
            finetune = osp.join(self.uniform_export, 'finetune.py')
            self.train(finetune, osp.dirname(self.uniform_weights), self.uniform_weights,
                       opts + epoch_options(self.uniform_epochs), 'uniform_cls_finetune')
            acc['slim_uniform'] = self.accuracy(finetune, self.uniform_weights, osp.join(
                uniform_dir, 'slim_test'), 'test_uniform_cls')
        return dict(row, classifier_top1=acc, p3b_keep_ratio=keep)

    def backbone_options(self, row):
        """``--cfg-options`` of a VIS row: its backbone (weights, export,
        VPP keep ratio), then the model options of every row."""
        model = [format_option(k, v) for k, v in self.args.cfg_options.items()]
        if row == 'dense':
            return [f'model.backbone.init_cfg.checkpoint={self.dense_cls}'] + model
        export, weights = (self.uniform_export, self.uniform_weights) \
            if row == 'slim_uniform' else (self.export, self.slim_weights)
        if row in ('slim', 'slim_uniform'):
            return [f'model.backbone.export={export}',
                    f'model.backbone.checkpoint={weights}'] + model
        return [f'model.backbone.backbone.export={export}',
                f'model.backbone.backbone.checkpoint={weights}',
                f'model.backbone.keep_ratio={self.args.keep_ratio}'] + model

    def train_vis(self, row, seed, iters, stage, extra=(), load_from=None):
        """A VIS training of ``row`` (resumed when it was killed); returns
        its final checkpoint."""
        ckpt, took = train_iters(run, VIS[row], osp.join(self.work, stage), iters,
                                 self.vis_opts + self.backbone_options(row) + list(extra),
                                 seed, load_from)
        if took is not None:
            self.times[stage] = took
        return ckpt

    def test_vis(self, config, ckpt, work, options, key):
        """Held-out AP, with the metric's ground truth and predictions
        dumped (cached); returns them matched per video."""
        out, dump = osp.join(work, 'test'), osp.join(work, VIS_PREDICTIONS)
        if not osp.exists(dump):
            self.times[key] = wrapped_test(
                run, ROOT, config, ckpt, out, options, "custom_imports = dict(imports=['mmsparse', "
                "'projects.composed.ytvis_dump_metric'], allow_failed_imports=False)\n"
                f"test_evaluator = dict(type='DumpingYouTubeVISAPMetric', dump_file={dump!r})\n",
                osp.join(out, 'test_config.py'))
        return video_records(read_json(dump))

    def vis_row(self, row):
        """Train (after the pre-training it starts from), test and, for ART,
        export one VIS row; returns its result with the per-video records."""
        a, kind, seed = self.args, row['kind'], row['seed']
        source = 'slim' if kind == 'slim_vpp' else kind  # the pre-training it starts from
        stage, pre = vis_stage(kind, seed), vis_stage(source, seed, pretrain=True)
        if kind == ART:  # ART on the trained slim + VPP model
            start = osp.join(self.work, vis_stage('slim_vpp', seed), f'iter_{a.finetune_iters}.pth')
            ckpt = self.train_vis(kind, seed, a.art_iters, stage,
                                  art_options(VIS[kind], a.art_iters), start)
        else:
            start = self.train_vis(source, seed, a.pretrain_iters, pre)
            ckpt = self.train_vis(kind, seed, a.finetune_iters, stage, load_from=start)
        work = osp.join(self.work, stage)
        records = self.test_vis(VIS[kind], ckpt, work, self.vis_opts + self.backbone_options(kind),
                                'test_' + stage)
        result = dict(row, **records.stats(), records=records.to_dict(),
                      train_seconds=self.times.total([stage] + [pre] * (kind in (
                          'dense', 'slim', 'slim_uniform'))),
                      test_seconds=self.times.get('test_' + stage))
        if kind == ART:
            dense = osp.join(self.work, vis_stage('dense', seed), f'iter_{a.finetune_iters}.pth')
            result['sizes'] = stages.sparse_export_sizes(
                run, ckpt, dense, osp.join(work, osp.basename(VIS[kind])), work, self.times,
                f'export_sparse_seed{seed}')
        return result

    def run_row(self, row):
        return self.classifiers(row) if row['kind'] == CLASSIFIERS else self.vis_row(row)


def video_records(dump):
    """The predictions of a test dump matched once per video
    (``YTVISVideoRecords``: AP on any resample of the videos)."""
    return YTVISVideoRecords.from_predictions(dump['gt'], dump['predictions'])


# ----------------------------------------------------------------------------- report
def summarize(store, args, times):
    """The report's numbers from the finished rows (the seeds whose rows
    are all finished), or None when there are none."""
    found = sorted({r['seed'] for r in store.all() if 'seed' in r})
    planned = plan_rows(argparse.Namespace(**dict(vars(args), seeds=found)))[1:]
    seeds = [s for s in found if all(store.done(r['name']) for r in planned if r['seed'] == s)]
    if not store.done(CLASSIFIERS) or not seeds:
        return None
    rows = vis_rows(args)
    vis = {k: {s: dict(store.read(vis_stage(k, s)), seed=s) for s in seeds} for k in rows}
    _, scores = items.video_scores(r for k in rows for r in vis[k].values())
    ap = {k: {s: r['AP'] for s, r in vis[k].items()} for k in rows}
    n = len(vis['dense'][seeds[0]]['records']['video_ids'])
    boot, boot_mean, seed_cis = {}, {}, {}
    for a, b in composed_report.comparisons(rows):
        key = f'{a}-{b}'
        boot[key] = {s: paired_bootstrap(scores[vis[a][s]['name']], scores[vis[b][s]['name']], n,
                                         n_boot=args.n_boot, seed=s) for s in seeds}
        c = tables.contrast(vis[a], vis[b], tables.mean_row_scores(scores), n, 'AP', args.n_boot)
        boot_mean[key], seed_cis[key] = c['boot'], c['seed_interval']
    cls = store.read(CLASSIFIERS)
    report_args = {k: v for k, v in vars(args).items()
                   if k not in ('dry_run', 'report_only', 'results_dir')}
    return dict(args=dict(report_args, seeds=seeds), classifier_top1=cls['classifier_top1'],
                p3b_keep_ratio=cls['p3b_keep_ratio'], ap=ap, bootstrap=boot,
                bootstrap_seed_mean=boot_mean, seed_intervals=seed_cis,
                checkpoint_bytes={s: r['sizes'] for s, r in vis.get(ART, {}).items()},
                seconds=dict(times), total_seconds=round(sum(times.values()), 1))


def report(work, args):
    """Write ``results.{md,json}`` (into the work dir and ``--results-dir``,
    with the row files) from the finished rows, or re-render the
    ``results.json`` of a work dir made before the rows were kept."""
    store, legacy = RowStore(work), osp.join(work, 'results.json')
    summary = summarize(store, args, stages.StageTimes(osp.join(work, 'seconds.json')))
    if summary is None and not store.files() and osp.isfile(legacy):
        summary = read_json(legacy)
    if summary is None:
        return print('no finished rows yet')
    table = composed_report.render(normalised(summary))
    outs = [work] + ([osp.join(ROOT, args.results_dir)] if args.results_dir else [])
    write_report(outs, 'results', table, summary, row_files=store.files(), json_indent=2)
    print(table)
    print('wrote ' + ' and '.join(osp.join(o, 'results.{md,json}') for o in outs))


def dry_run(rows, store, args):
    """Print the rows, which are finished, and the time left (``time_left``)."""
    done = store.finished(r['name'] for r in rows)
    left, cost = composed_report.time_left(rows, {name: store.read(name) for name in done})
    plan.print_rows(rows, done)
    print(f'{len(done)}/{len(rows)} rows finished; about {left / 3600:.1f} h left '
          f'({cost.rate:.2f} s/iter, {cost.fixed:.0f} s per test); model options: '
          f'{describe_options(args.cfg_options)}')


def parse_args(argv):
    parser = argparse.ArgumentParser(prog='run_toy_pipeline.py',
                                     description=__doc__.split('\n')[0])
    add = parser.add_argument
    add('--work-dir', default='work_dirs/composed_toy')
    add('--results-dir', help='also write the report and the row files there')
    add('--vis-data', default='data/toy_ytvis21_composed/')
    add('--cls-data', default='data/toy_shapes_cls/')
    add('--vis-videos', type=int, default=120, help='toy VIS videos, when --vis-data is made here')
    add('--heldout-ratio', type=float, default=0.5, help='held-out share of a new --vis-data')
    add('--seeds', type=int, nargs='+', default=[0])
    add('--cls-epochs', type=int, default=10)
    add('--p3b-epochs', type=int, default=8)
    add('--p3b-keep', type=float, default=0.5,
        help='fraction of the classifier parameters P3B (and the uniform baseline) keeps')
    add('--p3b-update-interval', type=int, default=20, help='iterations between P3B updates')
    add('--slim-finetune-epochs', type=int, default=4)
    add('--pretrain-iters', type=int, default=300)
    add('--finetune-iters', type=int, default=150)
    add('--keep-ratio', type=float, default=0.4, help='VPP keep ratio of the slim + VPP row')
    add('--art-iters', type=int, default=300,
        help='ART (90 %%) fine-tuning of the slim + VPP model; 0 leaves the row out')
    add('--cls-train-videos', type=int, default=300)
    add('--no-uniform', dest='uniform', action='store_false',
        help='leave out the uniform-slim baseline rows')
    add('--cfg-options', nargs='+', action=DictAction, default={},
        help='KEY=VALUE overrides of the model of every VIS row (as in tools/train.py)')
    add('--n-boot', type=int, default=1000)
    add('--threads', type=int, default=1)
    add('--reuse-dense', metavar='OTHER_WORK_DIR',
        help='link the finished dense classifier and dense VIS rows of the requested seeds '
        'from another work dir made with the same ' + ', '.join(
            '--' + k.replace('_', '-') for k in DENSE_OPTIONS))
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--dry-run', action='store_true',
                      help='print the rows, which are finished, and the time left')
    mode.add_argument('--report-only', action='store_true',
                      help='only rebuild the report from the finished rows')
    return parser, parser.parse_args(argv)


def check_args(args):
    """Error text for arguments the rows cannot take, else None."""
    if not 0 < args.p3b_keep < 1:
        return f'--p3b-keep must be in (0, 1), got {args.p3b_keep}'
    if min(args.cls_epochs, args.p3b_epochs, args.pretrain_iters,
           args.finetune_iters) < 1 or args.p3b_epochs < 3:
        return 'epochs / iterations must be >= 1 (--p3b-epochs >= 3)'
    if args.cfg_options:
        return check_cfg_options(
            args.cfg_options, {VIS[r]: Config.fromfile(osp.join(ROOT, VIS[r]))
                               for r in vis_rows(args)}, RESERVED_KEYS,
            "use the script's arguments (data, iterations, seeds, keep ratios)")
    return None


def main(argv=None):
    parser, args = parse_args(argv)
    RUNNER.env['OMP_NUM_THREADS'] = str(args.threads)
    error = check_args(args)
    if error:
        parser.error(error)
    work, defaults = osp.join(ROOT, args.work_dir), vars(parser.parse_args([]))
    lock, reused = PipelineLock(work, defaults), []
    if args.reuse_dense and not args.report_only:
        other = osp.join(ROOT, args.reuse_dense)
        try:
            reused = stages.reusable_stages(
                f'--reuse-dense {args.reuse_dense}', other, work,
                PipelineLock(other, defaults).saved(), lock.canonical(vars(args)), DENSE_OPTIONS,
                dense_stages(args))
        except ValueError as err:
            parser.error(str(err))
    error = lock.mismatch(vars(args))
    if error:
        parser.error(error)
    rows, store = plan_rows(args), RowStore(work)
    if args.dry_run:
        return dry_run(rows, store, args)
    if args.report_only:
        return report(work, args)
    os.makedirs(work, exist_ok=True)
    if not osp.exists(lock.path):
        lock.write(vars(args))
    pipeline = Pipeline(args, work)
    stages.link_stages(reused, pipeline.times, lambda entry: (entry, 'test_' + entry))
    pipeline.make_data()
    run_rows(rows, store, pipeline.run_row,
             lambda r: f"AP {r['AP']:.3f}" if 'AP' in r else 'classifiers trained and tested')
    report(work, args)


if __name__ == '__main__':
    main()
