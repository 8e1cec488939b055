"""Toy composed pipeline: P3B on classification -> slim ViT -> VIS with VPP.

    python projects/composed/run_toy_pipeline.py [--work-dir DIR]
        [--seeds 0 1 2] [--cls-epochs 10] [--p3b-epochs 8] [--p3b-keep 0.5]
        [--slim-finetune-epochs 4] [--pretrain-iters 300]
        [--finetune-iters 150] [--art-iters 300] [--n-boot 1000]
        [--threads 1] [--reuse-dense OTHER_WORK_DIR]

What a user of the three methods does, at toy scale, with the user-facing
tools only (``tools/train.py`` / ``tools/test.py`` on the configs of
``configs/composed/toy/``):

1. data: the toy YouTube-VIS set (``tools/misc/make_toy_ytvis.py``) and
   64x64 crops of the toy shapes from videos of other seeds
   (``toy_shapes_cls.py``: circle / square / triangle / background);
2. the toy VIS ViT (6 blocks, dim 192) trained as a classifier on the crops
   (``deit-toy_shapes-cls.py``), then P3B keeping 50 % of its parameters
   while fine-tuning (``p3b_deit-toy_shapes-cls.py``; P3BHook exports
   ``<run>/p3b/slim_model.{pth,py}``), then the slim classifier fine-tuned
   (the ``finetune.py`` P3BHook writes);
3. per seed, three VIS rows trained for the same iterations: *dense* (the
   dense classifier's ViT), *slim* (P3BViTPyramid from the export with the
   fine-tuned slim weights) and *slim + VPP* (the slim VIS model fine-tuned
   with VPP keep 0.4 from block 1, as the paper fine-tunes VPP from a
   trained model): ``--pretrain-iters`` from the classifier weights, then
   ``--finetune-iters`` more for every row (dense and slim continued, VPP
   switched on);
   then (``--art-iters``) ART + HyperSparse to 90 % sparsity on the trained
   slim + VPP model (``art-p3b-vpp_mask2former_vit_toy-ytvis21.py``, the
   hook's warm-up / fine-tuning scaled to the run) and its sparse export
   (``export_sparse_checkpoint.py``, strict round trip) against the dense
   model's state dict;
4. ``tools/test.py`` on the held-out toy videos (a set of its own,
   ``data/toy_ytvis21_composed/``: 120 videos, half held out, so 60 videos
   are scored, not the demo's 10), AP with the paired bootstrap over videos
   (``mmsparse.utils.stats.paired_bootstrap`` on the predictions matched
   once per video, ``YTVISVideoRecords``, as in the VPP benchmark; the
   seed-mean of both rows on the same draws) and, with several seeds, the
   paired seed interval.

Every step is a row whose output file is its done-marker: re-running the
script skips finished steps, so a killed run resumes. Writes
``results.json`` and ``results.md`` into the work dir, and the options of
its first run into ``run_options.json``: a later run in the same work dir
with other values of the options the steps depend on (all but ``--seeds``,
``--threads``, ``--n-boot``, ``--reuse-dense``) is refused before any work,
since finished steps are skipped by their files whatever the options.

The dense stages (the dense classifier and, per seed, the dense VIS rows) do
not depend on the P3B / VPP / ART options: ``--reuse-dense OTHER_WORK_DIR``
links (symlinks) the finished dense stages of another work dir, e.g. the
first run's, into this one for the requested seeds, after checking that
every option they depend on (``DENSE_OPTIONS``) is the same there (from its
``run_options.json``, else its ``results.json``) and that they are finished
for every requested seed; otherwise it stops before any work, naming the
option or the missing stage.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY = 'configs/composed/toy/'
CLS = TOY + 'deit-toy_shapes-cls.py'
P3B_CLS = TOY + 'p3b_deit-toy_shapes-cls.py'
VIS = dict(dense=TOY + 'cls-init_mask2former_vit_toy-ytvis21.py',
           slim=TOY + 'p3b_mask2former_vit_toy-ytvis21.py',
           slim_uniform=TOY + 'p3b_mask2former_vit_toy-ytvis21.py',
           slim_vpp=TOY + 'p3b-vpp_mask2former_vit_toy-ytvis21.py',
           slim_vpp_art=TOY + 'art-p3b-vpp_mask2former_vit_toy-ytvis21.py')
LABELS = dict(dense='dense', slim='P3B-slim',
              slim_uniform='uniform-slim (known-bad baseline)',
              slim_vpp='P3B-slim + VPP',
              slim_vpp_art='P3B-slim + VPP + ART 90 %')
ENV = {}
#: the options the dense stages depend on (data, data making, classifier
#: epochs, VIS iterations); the seeds are checked through the stages found
DENSE_OPTIONS = ('vis_data', 'cls_data', 'vis_videos', 'heldout_ratio',
                 'cls_train_videos', 'cls_epochs', 'pretrain_iters',
                 'finetune_iters')
RUN_OPTIONS = 'run_options.json'
#: options that do not change what a work dir's stages hold (a work dir may
#: be continued with other values); every other option is locked by the
#: first run's ``run_options.json``
FREE_OPTIONS = ('seeds', 'threads', 'n_boot', 'reuse_dense', 'work_dir')
DENSE_CLS = 'dense_cls'


def run(cmd, log_file):
    """Run a tool with its output into ``log_file``; returns seconds."""
    from mmsparse.utils.tool_runs import run_logged
    return run_logged(cmd, log_file, cwd=ROOT, env=ENV, pythonpath=ROOT)


class StepTimes(dict):
    """Seconds per step, kept in a json so that a resumed run still
    reports the cost of the steps it skipped."""

    def __init__(self, path):
        super().__init__()
        self.path = path
        if osp.exists(path):
            with open(path) as f:
                self.update(json.load(f))

    def __setitem__(self, key, value):
        super().__setitem__(key, round(value, 1))
        os.makedirs(osp.dirname(self.path), exist_ok=True)
        with open(self.path, 'w') as f:
            json.dump(self, f, indent=2)


def train(config, work, marker, options, times, key):
    """``tools/train.py`` unless ``marker`` exists."""
    if osp.exists(marker):
        return marker
    times[key] = run([sys.executable, 'tools/train.py', config,
                      '--work-dir', work, '--cfg-options'] + options,
                     osp.join(work, 'train_stdout.log'))
    if not osp.exists(marker):
        raise RuntimeError(f'{key}: training ended without {marker}')
    return marker


def test_classifier(config, ckpt, work, options, times, key):
    """Top-1 accuracy of a classifier checkpoint (cached)."""
    done = osp.join(work, 'accuracy.json')
    if not osp.exists(done):
        out = osp.join(work, 'test')
        times[key] = run([sys.executable, 'tools/test.py', config, ckpt,
                          '--work-dir', out, '--cfg-options'] + options,
                         osp.join(out, 'test_stdout.log'))
        metrics = _last_json(out)
        with open(done, 'w') as f:
            json.dump(metrics, f)
    with open(done) as f:
        return json.load(f)['accuracy/top1']


def _last_json(folder):
    found = []
    for dirpath, _, files in os.walk(folder):
        found += [osp.join(dirpath, f) for f in files
                  if f.endswith('.json') and f[:8].isdigit()]
    with open(max(found, key=osp.getmtime)) as f:
        return json.load(f)


def test_vis(config, ckpt, work, options, times, key):
    """Held-out AP, with the metric's ground truth and predictions dumped
    for the bootstrap (cached)."""
    out = osp.join(work, 'test')
    dump = osp.join(work, VIS_PREDICTIONS)
    if not osp.exists(dump):
        os.makedirs(out, exist_ok=True)
        wrapper = osp.join(out, 'test_config.py')
        with open(wrapper, 'w') as f:
            f.write(f'_base_ = [{osp.join(ROOT, config)!r}]\n'
                    'custom_imports = dict(imports=[\'mmsparse\', '
                    '\'projects.composed.ytvis_dump_metric\'], '
                    'allow_failed_imports=False)\n'
                    'test_evaluator = dict(type=\'DumpingYouTubeVISAPMetric\','
                    f' dump_file={dump!r})\n')
        times[key] = run([sys.executable, 'tools/test.py', wrapper, ckpt,
                          '--work-dir', out, '--cfg-options'] + options,
                         osp.join(out, 'test_stdout.log'))
    with open(dump) as f:
        return json.load(f)


def video_ap_fn(dump):
    """``indices -> AP`` of a resample of the test videos (a video drawn
    twice counts twice), from the predictions matched once per video
    (:class:`~mmsparse.evaluation.functional.ytvis_bootstrap.YTVISVideoRecords`,
    the records the VPP benchmark uses); returns ``(score_fn, n_videos)``."""
    from mmsparse.evaluation.functional.ytvis_bootstrap import \
        YTVISVideoRecords
    records = YTVISVideoRecords.from_predictions(dump['gt'],
                                                 dump['predictions'])
    return records.score_fn('AP'), records.num_videos


def _seed_mean(fns):
    return lambda idx: float(np.mean([f(idx) for f in fns]))


def schedule_options(epochs, interval):
    """P3BHook's schedule scaled to ``epochs`` (start at 1/8, goal keep
    ratio at 5/8, slim export at the end)."""
    start = max(1, epochs // 8)
    sparse = max(start + 1, (5 * epochs) // 8)
    return [f'train_cfg.max_epochs={epochs}',
            f'train_cfg.val_interval={epochs}',
            f'custom_hooks.0.prune_start={start}',
            f'custom_hooks.0.prune_sparse={sparse}',
            f'custom_hooks.0.prune_finalize={epochs}',
            f'custom_hooks.0.update_interval={interval}']


def epochs_options(epochs):
    """A classifier run of ``epochs`` epochs, validated and saved at its end."""
    return [f'train_cfg.max_epochs={epochs}', f'train_cfg.val_interval={epochs}',
            f'default_hooks.checkpoint.interval={epochs}']


def vis_iters_options(iters):
    return [f'train_cfg.max_iters={iters}',
            f'train_cfg.val_interval={iters + 1}', 'val_cfg=None',
            'val_dataloader=None', 'val_evaluator=None',
            f'default_hooks.checkpoint.interval={iters}']


def art_options(config, iters):
    """ARTHook of ``config`` scaled to an ``iters`` run: a third dense
    warm-up, ART steps every ``iters // 30``, at least a third fine-tuning
    under the mask."""
    from mmengine.config import Config
    hooks = Config.fromfile(osp.join(ROOT, config)).custom_hooks
    idx = next(i for i, h in enumerate(hooks) if h['type'] == 'ARTHook')
    key = f'custom_hooks.{idx}'
    return [f'{key}.warmup={iters // 3}',
            f'{key}.interval={max(1, iters // 30)}',
            f'{key}.min_finetune={iters // 3}']


def sparse_sizes(ckpt, dense_ckpt, config, work, times, key):
    """Export ``ckpt`` sparse (verified strict round trip) and compare
    the file with the dense row's state dict (cached)."""
    import io

    import torch
    done = osp.join(work, 'sparse_sizes.json')
    if not osp.exists(done):
        out = osp.join(work, 'sparse_model.pth')
        times[key] = run([sys.executable,
                          'tools/model_converters/export_sparse_checkpoint.py',
                          ckpt, out, '--config', config],
                         osp.join(work, 'export_sparse.log'))

        def nbytes(path):
            state = torch.load(path, map_location='cpu',
                               weights_only=False)['state_dict']
            buf = io.BytesIO()
            torch.save(state, buf)
            return buf.tell()

        sizes = dict(sparse_file=osp.getsize(out), art_state_dict=nbytes(ckpt),
                     dense_row_state_dict=nbytes(dense_ckpt))
        with open(done, 'w') as f:
            json.dump(sizes, f)
    with open(done) as f:
        return json.load(f)


def vis_stage(row, seed, pretrain=False):
    """Work-dir entry (and step-time key) of a VIS row of one seed."""
    return f'vis_{row}_pretrain_seed{seed}' if pretrain else f'vis_{row}_seed{seed}'


def cls_marker(args):
    """The dense classifier's final checkpoint (its done-marker)."""
    return f'epoch_{args.cls_epochs}.pth'


def vis_marker(iters):
    """A VIS training's final checkpoint (its done-marker)."""
    return f'iter_{iters}.pth'


#: the file ``test_vis`` writes into a VIS stage (its done-marker)
VIS_PREDICTIONS = osp.join('test', 'predictions.json')


def dense_stages(args):
    """The dense-only stages of ``args``: ``(work-dir entry, files that
    mark it finished)`` (the markers ``main`` trains and tests to)."""
    stages = [(DENSE_CLS, (cls_marker(args), 'accuracy.json'))]
    for seed in args.seeds:
        stages += [
            (vis_stage('dense', seed, pretrain=True),
             (vis_marker(args.pretrain_iters),)),
            (vis_stage('dense', seed),
             (vis_marker(args.finetune_iters), VIS_PREDICTIONS))]
    return stages


def _dense_value(key, value):
    """A dense option as compared: data roots as absolute paths."""
    if key in ('vis_data', 'cls_data'):
        return osp.normpath(osp.join(ROOT, value))
    return value


def saved_options(work):
    """The options ``work`` was run with (``run_options.json``, else the
    ``args`` of its ``results.json``), or None."""
    for name, key in ((RUN_OPTIONS, None), ('results.json', 'args')):
        path = osp.join(work, name)
        if osp.isfile(path):
            with open(path) as f:
                saved = json.load(f)
            return saved[key] if key else saved
    return None


def locked_options_mismatch(work, current):
    """Error text if ``work`` was started with other values of the options
    its stages depend on (all but :data:`FREE_OPTIONS`), else None.

    A finished stage is skipped by its marker whatever the options, so a
    continued run with, say, another ``--p3b-keep`` would report rows made
    with two settings as one; the first run's ``run_options.json`` decides.
    """
    saved = saved_options(work) if osp.isdir(work) else None
    if saved is None:
        return None
    diffs = []
    for key, value in current.items():
        if key in FREE_OPTIONS or key not in saved:
            continue
        there, here = saved[key], value
        if key in ('vis_data', 'cls_data'):
            there, here = _dense_value(key, there), _dense_value(key, here)
        if there != here:
            diffs.append(f"--{key.replace('_', '-')} (there {saved[key]!r}, "
                         f'here {value!r})')
    if not diffs:
        return None
    return (f'work dir {work} was started with other options: '
            f'{"; ".join(diffs)}; its finished stages would be mixed with new '
            'ones. Use another --work-dir for these options (--reuse-dense '
            'links its dense stages), or the same options to continue it.')


def check_reuse_dense(args, work):
    """The dense stages of ``--reuse-dense`` to link into ``work``, as
    ``[(source, link)]``; raises ``ValueError`` naming the first reason
    they cannot be reused (nothing is changed before)."""
    other = osp.join(ROOT, args.reuse_dense)
    where = f'--reuse-dense {args.reuse_dense}'
    if not osp.isdir(other):
        raise ValueError(f'{where}: not a directory')
    if osp.realpath(other) == osp.realpath(work):
        raise ValueError(f'{where}: is the --work-dir itself')
    saved = saved_options(other)
    if saved is None:
        raise ValueError(f'{where}: has neither {RUN_OPTIONS} nor results.json, '
                         'so the options its dense rows were made with are unknown')
    for key in DENSE_OPTIONS:
        flag = '--' + key.replace('_', '-')
        if key not in saved:
            raise ValueError(f'{where}: does not record {flag}, which the dense '
                             'rows depend on')
        there = _dense_value(key, saved[key])
        here = _dense_value(key, getattr(args, key))
        if there != here:
            raise ValueError(f'{where}: {flag} differs (there {saved[key]!r}, here '
                             f'{getattr(args, key)!r}); the dense rows depend on it')
    pairs, missing = [], []
    for stage, markers in dense_stages(args):
        source = osp.join(other, stage)
        lost = [m for m in markers if not osp.isfile(osp.join(source, m))]
        if lost:
            missing.append(f'{stage} ({", ".join(lost)})')
        pairs.append((source, osp.join(work, stage)))
    if missing:
        raise ValueError(f'{where}: dense stages not finished there for --seeds '
                         f'{" ".join(map(str, args.seeds))}: {"; ".join(missing)}')
    for source, link in pairs:
        if osp.lexists(link) and osp.realpath(link) != osp.realpath(source):
            raise ValueError(f'{where}: {link} exists and is not a link to {source}; '
                             'remove it or leave out --reuse-dense')
    return pairs


def link_dense(pairs, times):
    """Symlink (relative) the checked dense stages; their step times are
    copied from the other work dir's ``seconds.json``."""
    other_times = {}
    for source, link in pairs:
        if not other_times:
            other_times = StepTimes(osp.join(osp.dirname(source), 'seconds.json'))
        if not osp.lexists(link):
            os.makedirs(osp.dirname(link), exist_ok=True)
            os.symlink(osp.relpath(source, osp.dirname(link)), link)
        stage = osp.basename(link)
        for key in (stage, 'test_' + stage):
            if key in other_times and key not in times:
                times[key] = other_times[key]


def main(argv=None):
    from mmsparse.utils.stats import (format_diff, paired_bootstrap,
                                      paired_seed_interval)
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/composed_toy')
    parser.add_argument('--vis-data', default='data/toy_ytvis21_composed/')
    parser.add_argument('--cls-data', default='data/toy_shapes_cls/')
    parser.add_argument('--vis-videos', type=int, default=120,
                        help='toy VIS videos, when --vis-data is made here')
    parser.add_argument('--heldout-ratio', type=float, default=0.5,
                        help='held-out share, when --vis-data is made here')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--cls-epochs', type=int, default=10)
    parser.add_argument('--p3b-epochs', type=int, default=8)
    parser.add_argument('--p3b-keep', type=float, default=0.5,
                        help='fraction of the classifier parameters P3B (and '
                        'the uniform baseline) keeps; a finished work dir keeps '
                        'its value, so give another --work-dir with another keep')
    parser.add_argument('--p3b-update-interval', type=int, default=20,
                        help='iterations between P3B mask updates')
    parser.add_argument('--slim-finetune-epochs', type=int, default=4)
    parser.add_argument('--pretrain-iters', type=int, default=300)
    parser.add_argument('--finetune-iters', type=int, default=150)
    parser.add_argument('--keep-ratio', type=float, default=0.4,
                        help='VPP keep ratio of the slim + VPP row')
    parser.add_argument('--art-iters', type=int, default=300,
                        help='ART (90 %%) fine-tuning of the slim + VPP '
                        'model; 0 leaves the row out')
    parser.add_argument('--cls-train-videos', type=int, default=300)
    parser.add_argument('--no-uniform', dest='uniform', action='store_false',
                        help='leave out the uniform-slim baseline rows')
    parser.add_argument('--n-boot', type=int, default=1000)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument(
        '--reuse-dense', metavar='OTHER_WORK_DIR',
        help='link the finished dense classifier and dense VIS rows of the '
        'requested seeds from another work dir (e.g. the first run, for '
        'another --p3b-keep); refused unless the options they depend on are '
        'the same there: ' + ', '.join(
            '--' + k.replace('_', '-') for k in DENSE_OPTIONS))
    args = parser.parse_args(argv)
    if not 0 < args.p3b_keep < 1:
        parser.error(f'--p3b-keep must be in (0, 1), got {args.p3b_keep}')
    if min(args.cls_epochs, args.p3b_epochs, args.pretrain_iters,
           args.finetune_iters) < 1 or args.p3b_epochs < 3:
        parser.error('epochs / iterations must be >= 1 (--p3b-epochs >= 3)')
    ENV['OMP_NUM_THREADS'] = str(args.threads)
    work = osp.join(ROOT, args.work_dir)
    if args.reuse_dense:
        try:
            reused = check_reuse_dense(args, work)
        except ValueError as err:
            parser.error(str(err))
    error = locked_options_mismatch(work, vars(args))
    if error:
        parser.error(error)
    times, start = StepTimes(osp.join(work, 'seconds.json')), time.time()
    os.makedirs(work, exist_ok=True)
    if not osp.exists(osp.join(work, RUN_OPTIONS)):
        with open(osp.join(work, RUN_OPTIONS), 'w') as f:
            json.dump(vars(args), f, indent=2)
    if args.reuse_dense:
        link_dense(reused, times)
    results_file = osp.join(work, 'results.json')

    # 1. data
    vis_data = args.vis_data.rstrip('/') + '/'
    cls_data = args.cls_data.rstrip('/') + '/'
    if not osp.exists(osp.join(ROOT, vis_data, 'annotations',
                               'youtube_vis_2021_heldout.json')):
        run([sys.executable, 'tools/misc/make_toy_ytvis.py', '--out',
             vis_data, '--convert', '--num-videos', str(args.vis_videos),
             '--heldout-ratio', str(args.heldout_ratio)],
            osp.join(work, 'make_vis_data.log'))
    if not osp.isdir(osp.join(ROOT, cls_data, 'test')):
        run([sys.executable, 'projects/composed/toy_shapes_cls.py', '--out',
             cls_data, '--train-videos', str(args.cls_train_videos)],
            osp.join(work, 'make_cls_data.log'))
    cls_opts = [f'{dl}.dataset.data_root={cls_data}'
                for dl in ('train_dataloader', 'val_dataloader',
                           'test_dataloader')]
    vis_opts = [f'{dl}.dataset.data_root={vis_data}'
                for dl in ('train_dataloader', 'val_dataloader',
                           'test_dataloader')]

    # 2. classification: dense, P3B, slim fine-tune
    dense_cls_dir = osp.join(work, DENSE_CLS)
    dense_cls = train(
        CLS, dense_cls_dir, osp.join(dense_cls_dir, cls_marker(args)),
        cls_opts + epochs_options(args.cls_epochs), times, DENSE_CLS)
    p3b_dir = osp.join(work, 'p3b_cls')
    export = osp.join(p3b_dir, 'p3b')
    train(P3B_CLS, p3b_dir, osp.join(export, 'slim_model.pth'),
          cls_opts +
          schedule_options(args.p3b_epochs, args.p3b_update_interval) +
          [f'load_from={dense_cls}', f'custom_hooks.0.keep_ratio={args.p3b_keep}',
           f'default_hooks.checkpoint.interval={args.p3b_epochs}'],
          times, 'p3b_cls')
    slim_weights = osp.join(export, 'slim_model.pth')
    if args.slim_finetune_epochs:
        ft_dir = osp.join(p3b_dir, 'finetune')
        n = args.slim_finetune_epochs
        slim_weights = train(
            osp.join(export, 'finetune.py'), ft_dir,
            osp.join(ft_dir, f'epoch_{n}.pth'),
            cls_opts + epochs_options(n),
            times, 'slim_cls_finetune')
    acc = dict(
        dense=test_classifier(CLS, dense_cls, dense_cls_dir, cls_opts,
                              times, 'test_dense_cls'),
        slim=test_classifier(osp.join(export, 'finetune.py'), slim_weights,
                             osp.join(p3b_dir, 'slim_test'), cls_opts, times,
                             'test_slim_cls'))
    with open(osp.join(export, 'history.json')) as f:
        p3b_keep = json.load(f)['history'][-1]['global_keep']

    # the known-bad baseline: the same parameter budget with one keep ratio
    # for every block, cut once from the dense classifier by weight norm,
    # then fine-tuned for as many epochs as P3B ran plus its fine-tuning
    uniform_dir = osp.join(work, 'uniform_cls')
    uniform_export = osp.join(uniform_dir, 'p3b')
    uniform_epochs = args.p3b_epochs + args.slim_finetune_epochs
    if args.uniform:
        if not osp.exists(osp.join(uniform_export, 'slim_model.pth')):
            times['uniform_cut'] = run(
                [sys.executable, 'projects/composed/uniform_slim_export.py',
                 CLS, dense_cls, '--out', uniform_export, '--keep',
                 str(p3b_keep), '--score', 'magnitude'],
                osp.join(uniform_dir, 'uniform_cut.log'))
        ft_dir = osp.join(uniform_dir, 'finetune')
        uniform_weights = train(
            osp.join(uniform_export, 'finetune.py'), ft_dir,
            osp.join(ft_dir, f'epoch_{uniform_epochs}.pth'),
            cls_opts + epochs_options(uniform_epochs),
            times, 'uniform_cls_finetune')
        acc['slim_uniform'] = test_classifier(
            osp.join(uniform_export, 'finetune.py'), uniform_weights,
            osp.join(uniform_dir, 'slim_test'), cls_opts, times,
            'test_uniform_cls')

    # 3. VIS rows per seed, 4. test
    backbone_opts = dict(
        dense=[f'model.backbone.init_cfg.checkpoint={dense_cls}'],
        slim=[f'model.backbone.export={export}',
              f'model.backbone.checkpoint={slim_weights}'],
        slim_vpp=[f'model.backbone.backbone.export={export}',
                  f'model.backbone.backbone.checkpoint={slim_weights}',
                  f'model.backbone.keep_ratio={args.keep_ratio}'])
    backbone_opts['slim_vpp_art'] = backbone_opts['slim_vpp']
    rows = [r for r in VIS if (r != 'slim_vpp_art' or args.art_iters)
            and (r != 'slim_uniform' or args.uniform)]
    if args.uniform:
        backbone_opts['slim_uniform'] = [
            f'model.backbone.export={uniform_export}',
            f'model.backbone.checkpoint={uniform_weights}']
    dumps = {row: {} for row in rows}
    sizes = {}
    for seed in args.seeds:
        seed_opts = vis_opts + [f'randomness.seed={seed}']
        pre = {}
        for row in [r for r in ('dense', 'slim', 'slim_uniform') if r in rows]:
            stage = vis_stage(row, seed, pretrain=True)
            d = osp.join(work, stage)
            pre[row] = train(
                VIS[row], d, osp.join(d, vis_marker(args.pretrain_iters)),
                seed_opts + backbone_opts[row] +
                vis_iters_options(args.pretrain_iters), times, stage)
        ckpts = {}
        for row in rows:
            stage = vis_stage(row, seed)
            d = osp.join(work, stage)
            iters, extra = args.finetune_iters, []
            if row == 'slim_vpp_art':  # ART on the trained slim + VPP model
                start_from = ckpts['slim_vpp']
                iters = args.art_iters
                extra = art_options(VIS[row], iters)
            else:
                start_from = pre.get(row, pre['slim'])
            ckpts[row] = train(
                VIS[row], d, osp.join(d, vis_marker(iters)),
                seed_opts + backbone_opts[row] + vis_iters_options(iters) +
                extra + [f'load_from={start_from}'], times, stage)
            dumps[row][seed] = test_vis(VIS[row], ckpts[row], d,
                                        vis_opts + backbone_opts[row], times,
                                        f'test_vis_{row}_seed{seed}')
            if row == 'slim_vpp_art':
                sizes[seed] = sparse_sizes(
                    ckpts[row], ckpts['dense'],
                    osp.join(d, osp.basename(VIS[row])), d, times,
                    f'export_sparse_seed{seed}')

    # AP table with intervals
    scores = {row: {s: video_ap_fn(dumps[row][s]) for s in args.seeds}
              for row in rows}
    ap = {row: {s: scores[row][s][0](np.arange(scores[row][s][1]))
                for s in args.seeds} for row in rows}
    comparisons = [(r, 'dense') for r in rows[1:]] + [('slim_vpp', 'slim')]
    if 'slim_uniform' in rows:
        comparisons.append(('slim', 'slim_uniform'))
    if 'slim_vpp_art' in rows:
        comparisons.append(('slim_vpp_art', 'slim_vpp'))
    boot, boot_mean, seed_cis = {}, {}, {}
    n_videos = scores['dense'][args.seeds[0]][1]
    for a, b in comparisons:
        boot[f'{a}-{b}'] = {
            s: paired_bootstrap(scores[a][s][0], scores[b][s][0],
                                scores[a][s][1], n_boot=args.n_boot, seed=s)
            for s in args.seeds}
        # the seed-mean of both rows on the same video draws
        boot_mean[f'{a}-{b}'] = paired_bootstrap(
            _seed_mean([scores[a][s][0] for s in args.seeds]),
            _seed_mean([scores[b][s][0] for s in args.seeds]), n_videos,
            n_boot=args.n_boot, seed=0)
        seed_cis[f'{a}-{b}'] = paired_seed_interval(
            [ap[a][s] for s in args.seeds], [ap[b][s] for s in args.seeds])
    s0 = args.seeds[0]
    lines = [
        f'Toy YouTube-VIS (held-out videos, {scores["dense"][s0][1]} '
        f'videos). Classifier top-1 on the toy-shape crops: dense '
        f'{acc["dense"]:.1f} %, P3B-slim (keep {p3b_keep:.3f} of the '
        f'parameters, fine-tuned {args.slim_finetune_epochs} epochs) '
        f'{acc["slim"]:.1f} %'
        + (f', uniform-slim (the same budget with one keep ratio per block, '
           f'cut by weight norm from the dense classifier, fine-tuned '
           f'{uniform_epochs} epochs = P3B\'s {args.p3b_epochs} + '
           f'{args.slim_finetune_epochs}) {acc["slim_uniform"]:.1f} %'
           if 'slim_uniform' in rows else '')
        + f'. VIS: {args.pretrain_iters} iterations from '
        f'the classifier weights + {args.finetune_iters} for every row '
        f'(VPP keep {args.keep_ratio} from block 1 in the last '
        f'{args.finetune_iters}'
        + (f'; the ART row continues the slim + VPP model for '
           f'{args.art_iters} more iterations' if 'slim_vpp_art' in rows
           else '')
        + '). AP in points; differences with 95 % '
        'paired-bootstrap intervals over the held-out videos (the '
        'seed-mean of both rows on the same video draws)'
        f'{" and the paired seed interval" if len(args.seeds) > 1 else ""}.',
        '', '| row | AP (mean over seeds) | per seed | vs dense (bootstrap '
        'over videos) | vs dense (seeds) |', '|---|---|---|---|---|'
    ]
    for row in rows:
        per_seed = ', '.join(f'{100 * ap[row][s]:.1f}' for s in args.seeds)
        mean = 100 * float(np.mean([ap[row][s] for s in args.seeds]))
        if row == 'dense':
            lines.append(f'| {LABELS[row]} | {mean:.1f} | {per_seed} | - | - |')
            continue
        key = f'{row}-dense'
        lines.append(
            f'| {LABELS[row]} | {mean:.1f} | {per_seed} | '
            f'{format_diff(boot_mean[key], 100, 1)} | '
            f'{format_diff(seed_cis[key], 100, 1) if len(args.seeds) > 1 else "-"} |')
    lines.append(
        '\nslim + VPP vs slim (bootstrap over videos): '
        f'{format_diff(boot_mean["slim_vpp-slim"], 100, 1)} AP points')
    if 'slim_uniform' in rows:
        lines.append(
            'P3B-slim vs uniform-slim (bootstrap over videos): '
            f'{format_diff(boot_mean["slim-slim_uniform"], 100, 1)} AP points'
            + (f'; seeds {format_diff(seed_cis["slim-slim_uniform"], 100, 1)}'
               if len(args.seeds) > 1 else ''))
    if sizes:
        z = sizes[s0]
        lines.append(
            f'ART ({args.art_iters} iterations, 90 % sparsity) vs slim + VPP '
            '(bootstrap over videos): '
            f'{format_diff(boot_mean["slim_vpp_art-slim_vpp"], 100, 1)} AP '
            f'points. Checkpoint: sparse export '
            f'{z["sparse_file"] / 2**20:.2f} MiB vs the dense model\'s state '
            f'dict {z["dense_row_state_dict"] / 2**20:.2f} MiB '
            f'({z["sparse_file"] / z["dense_row_state_dict"]:.3f}x; the '
            'ART model dense: '
            f'{z["art_state_dict"] / 2**20:.2f} MiB).')
    table = '\n'.join(lines)
    print(table)
    with open(osp.join(work, 'results.md'), 'w') as f:
        f.write(table + '\n')
    with open(results_file, 'w') as f:
        json.dump(dict(args=vars(args), classifier_top1=acc,
                       p3b_keep_ratio=p3b_keep, ap=ap, bootstrap=boot,
                       bootstrap_seed_mean=boot_mean,
                       seed_intervals=seed_cis, checkpoint_bytes=sizes,
                       seconds=times,
                       total_seconds=round(time.time() - start, 1)), f,
                  indent=2, default=str)
    print(f'wrote {results_file} and results.md')


if __name__ == '__main__':
    main()
