"""VPP toy benchmark: dense vs VPP (temporal) vs image-only vs random patch selection.

    python projects/vpp/run_toy_comparison.py [--work-dir DIR] [--results-dir DIR]
        [--seeds 0 1 2] [--pretrain-iters 2000] [--finetune-iters 200]
        [--schedules [paper single]] [--selectors [temporal image random]]
        [--truncate [K ...]] [--cfg-options KEY=VALUE ...]
        [--n-boot 1000] [--threads 1] [--dry-run | --report-only]

The protocol follows the paper (dense training, then sparse fine-tuning from
the dense weights) at toy scale, with the user-facing tools only, on the
*hard* toy set (``tools/misc/make_toy_ytvis.py --mode hard``: objects,
background clutter and moving look-alike distractors in the same colours and
texture, so early-block patches do not tell objects from background):

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
import copy
import glob
import os.path as osp
import sys

import numpy as np
from mmengine.config import Config, DictAction

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from mmsparse.evaluation.functional.ytvis_bootstrap import \
    YTVISVideoRecords  # noqa: E402
from mmsparse.experiment import (CostModel, OptionsLock,  # noqa: E402
                                 RowStore, ToolRunner, cached_score,
                                 check_cfg_options, describe_options,
                                 format_option, normalised, paired_contrast,
                                 run_rows, vis, write_report)
from mmsparse.experiment.vis import data_options, heldout_gt  # noqa: E402,F401
from mmsparse.utils.stats import format_diff, paired_bootstrap  # noqa: E402

DENSE = 'configs/toy/mask2former_vit_toy-ytvis21_hard.py'
_CONFIGS = {}


def load_config(path):
    """The config at ``path`` (relative to the repository root), loaded once."""
    if path not in _CONFIGS:
        _CONFIGS[path] = Config.fromfile(osp.join(ROOT, path), import_custom_modules=False)
    return _CONFIGS[path]


SCHEDULES = {
    'paper': dict(
        config='configs/toy/vpp_mask2former_vit_toy-ytvis21_hard_paper.py',
        label='paper (0.7/0.56/0.448/0.358 at blocks 1-4)'),
    'single': dict(
        config='configs/toy/vpp_mask2former_vit_toy-ytvis21_hard.py',
        label='single stage (0.4 at block 1)'),
    # the paper schedule with a pixel decoder that follows the keep set
    # (KeepSetPixelDecoder); meant with --selectors temporal
    'paper_keepset': dict(
        config='configs/toy/vpp_mask2former_vit_toy-ytvis21_hard_paper_keepset-decoder.py',
        label='paper + keep-set decoder'),
    'paper_reuse': dict(
        config='configs/toy/vpp_mask2former_vit_toy-ytvis21_hard_paper_keepset-decoder-reuse.py',
        label='paper + keep-set decoder, temporal reuse'),
    'paper_imagedec': dict(
        config='configs/toy/vpp_mask2former_vit_toy-ytvis21_hard_paper_image-decoder.py',
        label='paper + image-score decoder'),
}
#: Schedules run when --schedules is not given.
DEFAULT_SCHEDULES = ('paper', 'single')
#: Pixel-decoder contrasts (schedule a - schedule b, temporal selector both).
DECODER_CONTRASTS = (('paper_keepset', 'paper'), ('paper_reuse', 'paper'),
                     ('paper_imagedec', 'paper'), ('paper_keepset', 'paper_imagedec'))
SELECTORS = ('temporal', 'image', 'random')
LABELS = dict(dense='dense', temporal='VPP (temporal prior)',
              image='image-only', random='random', truncated='dense, no pruning')
# Diagnostic rows (``--truncate K``): the dense model with only its first K ViT
# blocks, fine-tuned like every row. If it stays near the dense AP, the toy's
# objects are recognised from early-block features and the later blocks (where
# the staged selectors act) carry little of the task.
TRUNCATED = 'trunc'


def schedule_label(schedule, depth):
    """Table / plot label of ``schedule``; ``depth``: ViT blocks of the dense
    model (see :func:`model_shape`)."""
    if schedule.startswith(TRUNCATED):
        return f'ViT cut to its first {schedule[len(TRUNCATED):]} of {depth} blocks'
    return 'dense' if schedule == 'dense' else SCHEDULES[schedule]['label']


METRICS = ('AP', 'AP50', 'AP75')
# Data of the benchmark (tools/misc/make_toy_ytvis.py --mode hard).
DATA = dict(num_videos=400, num_frames=6, heldout_ratio=0.5, seed=0)

RUNNER = ToolRunner(ROOT)
# ``--cfg-options`` keys the script sets itself (refused: use its arguments).
RESERVED_KEYS = ('train_cfg', 'randomness', 'load_from', 'resume', 'val_cfg', 'val_dataloader',
                 'val_evaluator', 'test_evaluator', 'default_hooks.checkpoint',
                 'train_dataloader.dataset.data_root', 'test_dataloader.dataset.data_root')


ENCODER_LAYERS = 'model.track_head.pixel_decoder.encoder.num_layers'


def wraps_vit(config):
    """Whether ``config``'s ViT sits in ``model.backbone.backbone`` (VPP)."""
    return load_config(config).model.backbone.get('type') == 'VPPBackbone'


def move_key(config, key):
    """A ``model.backbone.*`` key addresses the ViT: on a config that wraps
    the ViT it becomes ``model.backbone.backbone.*``."""
    if key.startswith('model.backbone.') and wraps_vit(config):
        return 'model.backbone.backbone.' + key[len('model.backbone.'):]
    return key


def model_options(config, cfg_options):
    """``--cfg-options`` for ``config`` as ``KEY=VALUE`` strings."""
    return [format_option(move_key(config, k), v) for k, v in (cfg_options or {}).items()]


def check_model_options(configs, cfg_options):
    """Error text for ``--cfg-options`` the rows cannot take, else None."""
    cfg_options = cfg_options or {}
    error = check_cfg_options(
        cfg_options, {}, RESERVED_KEYS, 'use its arguments (iterations, seeds, data, '
        'checkpoints: --pretrain-iters, --finetune-iters, --seeds, --data-root)')
    value = cfg_options.get(ENCODER_LAYERS, 1)
    if error is None and not (isinstance(value, int) and value >= 1):
        # mmdet's DeformableDetrTransformerEncoder takes its embed_dims from
        # layers[0]: an encoder without layers does not build.
        error = (f'--cfg-options {ENCODER_LAYERS} must be an int >= 1 (mmdet\'s pixel decoder '
                 f'does not build without an encoder layer), got {value!r}')
    return error or check_cfg_options(cfg_options, {c: load_config(c) for c in configs},
                                      move=move_key)


def model_shape(cfg_options):
    """(ViT depth, embed dim, pixel-decoder encoder layers) of the dense
    config with ``cfg_options`` merged."""
    cfg = copy.deepcopy(load_config(DENSE))
    if cfg_options:
        cfg.merge_from_dict(dict(cfg_options))
    arch = cfg.model.backbone.arch
    if not hasattr(arch, 'keys'):
        raise ValueError(f'run_toy_comparison: model.backbone.arch must stay a dict '
                         f'(embed_dims, num_layers, ...), got {arch!r}')
    return (arch['num_layers'], arch['embed_dims'],
            cfg.model.track_head.pixel_decoder.encoder.num_layers)


def run(cmd, log_file):
    """Run a tool with its output into ``log_file``; returns seconds."""
    return RUNNER(cmd, log_file)


def train(config, work, iters, options, seed, load_from=None):
    """Train (or reuse the final checkpoint); returns (checkpoint, seconds)."""
    return vis.train_iters(run, config, work, iters, options, seed, load_from)


def test(config, ckpt, work, options):
    """tools/test.py with a second evaluator that writes the predictions."""
    return vis.test_predictions(run, ROOT, config, ckpt, work, options)


def plan_rows(args):
    """The rows of the run; ``options`` of a row: the ``--cfg-options`` (for
    its config), then the row's own (which win: selector, truncation)."""
    cfg_options = getattr(args, 'cfg_options', None) or {}
    rows = []

    def add(name, schedule, selector, seed, config, options):
        rows.append(dict(name=name, schedule=schedule, selector=selector, seed=seed,
                         config=config, cfg_options=cfg_options,
                         options=model_options(config, cfg_options) + options))
    for seed in args.seeds:
        add(f'dense_seed{seed}', 'dense', 'dense', seed, DENSE, [])
        for schedule in args.schedules:
            for sel in args.selectors:
                add(f'{schedule}_{sel}_seed{seed}', schedule, sel, seed,
                    SCHEDULES[schedule]['config'], [f'model.backbone.selector={sel}'])
        for blocks in args.truncate:
            add(f'{TRUNCATED}{blocks}_seed{seed}', f'{TRUNCATED}{blocks}', 'truncated', seed,
                DENSE, [f'model.backbone.arch.num_layers={blocks}'])
    return rows


def run_options(args):
    """What a work dir's rows depend on beyond their own row (JSON-normalised)."""
    return normalised(dict(cfg_options=args.cfg_options or {},
                           pretrain_iters=args.pretrain_iters,
                           finetune_iters=args.finetune_iters))


def options_lock(work):
    """The work dir's option lock; a work dir of the script before it wrote
    ``run_options.json`` is read from its first row file (iterations, no
    --cfg-options); only rows or checkpoints lock it."""
    store = RowStore(work)

    def legacy():
        files = store.files()
        if not files:
            return None
        row = store.read(osp.basename(files[0])[:-len('.json')])
        return dict(cfg_options=row.get('cfg_options', {}),
                    pretrain_iters=row['pretrain_iters'], finetune_iters=row['finetune_iters'])
    return OptionsLock(work, legacy=legacy, holds_work=lambda: bool(
        store.files() or glob.glob(osp.join(work, '*', '*.pth'))))


def run_row(row, args, data_root, pre_ckpt, gt, work):
    run_dir = osp.join(work, row['name'])
    opts = data_options(data_root) + row['options']
    ckpt, train_time = train(row['config'], run_dir, args.finetune_iters, opts,
                             row['seed'], load_from=pre_ckpt)
    metrics, predictions, test_time = test(row['config'], ckpt, run_dir, opts)
    records = YTVISVideoRecords.from_predictions(gt, predictions)
    stats = records.stats()
    ap_metric = metrics['youtube_vis/segm_mAP']
    if abs(stats['AP'] - ap_metric) > 6e-4:  # the metric rounds to 3 decimals
        raise RuntimeError(f'{row["name"]}: AP from the saved predictions '
                           f'{stats["AP"]:.4f} != evaluator AP {ap_metric:.3f}')
    return dict(
        row, finetune_iters=args.finetune_iters, pretrain_iters=args.pretrain_iters,
        **stats, pkr=metrics.get('vpp_pkr', 1.0), keep=metrics.get('vpp_keep', 1.0),
        fg_recall=metrics.get('vpp_fg_recall', 1.0),
        train_seconds=None if train_time is None else round(train_time, 1),
        test_seconds=round(test_time, 1), records=records.to_dict())


# ----------------------------------------------------------------------------- report
def _records_score(records, metric='AP'):
    """``records.stats(idx)[metric]``, memoised on the draw (rows share draws)."""
    return cached_score(lambda idx: records.stats(idx)[metric])


def _group_order(item):
    (schedule, selector), _ = item
    return (schedule != 'dense', schedule.startswith(TRUNCATED), schedule != 'paper', schedule,
            (('dense',) + SELECTORS + ('truncated',)).index(selector))


def _contrast(rows_a, rows_b, paired, scores, records, n_boot, **head):
    """``rows_a`` - ``rows_b`` (rows by seed) on the seeds ``paired``, as a
    report entry (``head`` first)."""
    c = paired_contrast([scores[rows_a[s]['name']] for s in paired],
                        [scores[rows_b[s]['name']] for s in paired],
                        [rows_a[s]['AP'] for s in paired], [rows_b[s]['AP'] for s in paired],
                        records[rows_a[paired[0]]['name']].num_videos, n_boot=n_boot)
    return dict(head, boot=c['boot'], seed_interval=c['seeds'])


def summarize(results, n_boot):
    """Aggregate finished rows: means over seeds and paired intervals."""
    by_key = {}
    for r in results:
        by_key.setdefault((r['schedule'], r['selector']), {})[r['seed']] = r
    records = {r['name']: YTVISVideoRecords.from_dict(r['records']) for r in results}
    scores = {name: _records_score(rec) for name, rec in records.items()}
    dense = by_key.get(('dense', 'dense'), {})
    groups = []
    for (schedule, selector), per_seed in sorted(by_key.items(), key=_group_order):
        seeds = sorted(per_seed)
        g = dict(schedule=schedule, selector=selector, seeds=seeds,
                 **{k: float(np.mean([per_seed[s][k] for s in seeds]))
                    for k in METRICS + ('pkr', 'keep', 'fg_recall')})
        paired = [s for s in seeds if s in dense]
        if selector != 'dense' and paired:
            c = _contrast(per_seed, dense, paired, scores, records, n_boot)
            g['diff_boot'], g['diff_seeds'] = c['boot'], c['seed_interval']
            n = records[per_seed[paired[0]]['name']].num_videos
            g['per_seed'] = {s: paired_bootstrap(scores[per_seed[s]['name']],
                                                 scores[dense[s]['name']], n, n_boot=n_boot)
                             for s in paired}
        groups.append(g)
    contrasts = []
    for schedule in SCHEDULES:
        for other in ('image', 'random'):
            a, b = by_key.get((schedule, 'temporal'), {}), by_key.get((schedule, other), {})
            seeds = sorted(set(a) & set(b))
            if seeds:
                contrasts.append(_contrast(a, b, seeds, scores, records, n_boot,
                                           schedule=schedule, a='temporal', b=other,
                                           seeds=seeds))
    for sched_a, sched_b in DECODER_CONTRASTS:
        a, b = by_key.get((sched_a, 'temporal'), {}), by_key.get((sched_b, 'temporal'), {})
        seeds = sorted(set(a) & set(b))
        if seeds:
            contrasts.append(_contrast(
                a, b, seeds, scores, records, n_boot, schedule=f'{sched_a} - {sched_b}',
                a='temporal', b='temporal', seeds=seeds,
                label=f"{SCHEDULES[sched_a]['label']} - {SCHEDULES[sched_b]['label']}"))
    return groups, contrasts


def render_tables(groups, contrasts, meta):
    pct = dict(scale=100, digits=1)
    depth = meta['vit_depth']
    options = ' '.join(f'`{format_option(k, v)}`' for k, v in meta.get('cfg_options', {}).items())
    lines = [
        f"Hard toy YouTube-VIS ({meta['heldout_videos']} held-out videos x "
        f"{meta['num_frames']} frames, 320x192), ViT {depth} blocks dim "
        f"{meta.get('embed_dims', 192)}, pixel decoder with "
        f"{meta.get('decoder_layers', 2)} deformable-attention encoder layers; model options "
        f"(--cfg-options, every row): {options or 'none'}; dense pre-training "
        f"{meta['pretrain_iters']} iters, then {meta['finetune_iters']} fine-tuning iters "
        'for every row from the same dense checkpoint, one row per training seed; first '
        'frame of each video dense. AP columns: mean over seeds. Differences to the dense '
        'rows of the same seeds, AP points with 95 % intervals: paired bootstrap over '
        f"held-out videos ({meta['n_boot']} draws, seed-mean of both rows on each draw) "
        'and Student-t over seeds.', '',
        '| schedule | selection | seeds | PKR (test) | object pixels kept | AP | AP50 | AP75 '
        '| AP - dense [bootstrap over videos] | AP - dense [t over seeds] |',
        '|---|---|---|---|---|---|---|---|---|---|']
    for g in groups:
        sched = schedule_label(g['schedule'], depth)
        boot = format_diff(g['diff_boot'], **pct) if 'diff_boot' in g else ''
        seeds = format_diff(g['diff_seeds'], **pct) if 'diff_seeds' in g else ''
        lines.append(
            f"| {sched} | {LABELS[g['selector']]} | {len(g['seeds'])} | {g['pkr']:.3f} | "
            f"{g['fg_recall']:.3f} | {100 * g['AP']:.1f} | {100 * g['AP50']:.1f} | "
            f"{100 * g['AP75']:.1f} | {boot} | {seeds} |")
    lines += ['', 'Per seed (AP - dense of the same seed, paired bootstrap over videos):', '',
              '| schedule | selection | ' + ' | '.join(
                  f'seed {s}' for s in meta['seeds']) + ' |',
              '|---|---|' + '---|' * len(meta['seeds'])]
    for g in groups:
        if 'per_seed' not in g:
            continue
        cells = [format_diff(g['per_seed'][s], **pct) if s in g['per_seed'] else ''
                 for s in meta['seeds']]
        lines.append(f"| {g['schedule']} | {LABELS[g['selector']]} | " + ' | '.join(cells)
                     + ' |')
    if contrasts:
        lines += ['', 'Selector contrasts (AP points, seed-mean, 95 % intervals):', '',
                  '| schedule | contrast | seeds | bootstrap over videos | t over seeds |',
                  '|---|---|---|---|---|']
        for c in contrasts:
            what = c.get('label', f"{LABELS[c['a']]} - {LABELS[c['b']]}")
            lines.append(f"| {c['schedule']} | {what} | "
                         f"{len(c['seeds'])} | {format_diff(c['boot'], **pct)} | "
                         f"{format_diff(c['seed_interval'], **pct)} |")
    return '\n'.join(lines)


def plot(groups, out_file, depth):
    """AP - dense (bootstrap interval, seeds as dots) and object pixels kept,
    one column per schedule (and per truncation), one colour per selection;
    ``depth``: ViT blocks of the dense model (see :func:`model_shape`)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    kinds = SELECTORS + ('truncated',)
    columns = []
    for g in groups:
        if 'diff_boot' in g and g['schedule'] not in columns:
            columns.append(g['schedule'])
    width = 0.25
    labelled = set()
    for g in groups:
        if 'diff_boot' not in g:
            continue
        j = kinds.index(g['selector'])
        in_column = [h['selector'] for h in groups
                     if h['schedule'] == g['schedule'] and 'diff_boot' in h]
        x = columns.index(g['schedule']) + \
            (in_column.index(g['selector']) - (len(in_column) - 1) / 2) * width
        d = g['diff_boot']
        label = None if g['selector'] in labelled else LABELS[g['selector']]
        labelled.add(g['selector'])
        ax.errorbar([x], [100 * d['diff']], yerr=[[100 * (d['diff'] - d['low'])],
                                                  [100 * (d['high'] - d['diff'])]],
                    fmt='o', capsize=4, color=f'C{j}', label=label)
        per_seed = [100 * v['diff'] for v in g['per_seed'].values()]
        ax.plot([x] * len(per_seed), per_seed, '.', color=f'C{j}', alpha=0.5)
        ax2.bar([x], [g['fg_recall']], width=width * 0.9, color=f'C{j}', label=label)
    ax.axhline(0, color='k', ls='--', lw=1)
    ax.set_ylabel('AP - dense (points; 95 % bootstrap over videos)')
    ax.set_title('Hard toy VIS: AP cost of the patch selection')
    ax2.set_ylabel('object pixels whose patch was kept')
    ax2.set_ylim(0, 1.02)
    ax2.set_title('Foreground kept in the pruned frames')
    for a in (ax, ax2):
        a.set_xticks(range(len(columns)))
        a.set_xticklabels([SCHEDULES[s]['label'] if s in SCHEDULES else schedule_label(s, depth)
                           for s in columns], fontsize=8)
        a.grid(alpha=0.3, axis='y')
        if labelled:
            a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_file, dpi=110)
    plt.close(fig)


def report(work, results_dir, args, meta):
    store = RowStore(work)
    files, results = store.files(), store.all()
    if not results:
        print('no finished rows yet')
        return
    groups, contrasts = summarize(results, args.n_boot)
    meta = dict(meta, seeds=sorted({r['seed'] for r in results}),
                finetune_iters=results[0]['finetune_iters'],
                pretrain_iters=results[0]['pretrain_iters'],
                heldout_videos=len(results[0]['records']['video_ids']))
    table = render_tables(groups, contrasts, meta)
    seconds = [r['train_seconds'] for r in results if r['train_seconds']] + \
        [r['test_seconds'] for r in results]
    summary = dict(meta=meta, groups=groups, contrasts=contrasts,
                   rows=[{k: v for k, v in r.items() if k != 'records'} for r in results],
                   row_seconds_total=round(float(np.sum(seconds)), 1))
    write_report([work, results_dir], 'comparison', table, summary,
                 plot=lambda path: plot(groups, path, meta['vit_depth']), row_files=files)
    print(table)
    print(f'wrote {results_dir}/comparison.{{md,json,png}} and rows/')


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
    config_depth = model_shape({})[0]  # ViT blocks of the dense toy config
    parser.add_argument('--work-dir', default='work_dirs/vpp_toy_benchmark')
    parser.add_argument('--results-dir', default='projects/vpp/results/toy_hard')
    parser.add_argument('--data-root', default='data/toy_ytvis21_hard/')
    parser.add_argument('--pretrain-iters', type=int, default=2000)
    parser.add_argument('--finetune-iters', type=int, default=200)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--schedules', nargs='*', default=list(DEFAULT_SCHEDULES),
                        choices=list(SCHEDULES),
                        help='VPP schedules of the pruned rows (default: '
                        f"{' '.join(DEFAULT_SCHEDULES)}; the paper_* pixel-decoder variants with "
                        '--selectors temporal); with no value, no pruned rows (e.g. only the '
                        'dense rows and --truncate)')
    parser.add_argument('--selectors', nargs='*', default=list(SELECTORS),
                        choices=list(SELECTORS))
    parser.add_argument('--truncate', type=int, nargs='*', default=[],
                        help='diagnostic rows: the dense model cut to its first K ViT '
                        f'blocks (1-{config_depth - 1} of the {config_depth}-block toy, or of the '
                        'depth --cfg-options set), fine-tuned like the other rows')
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
    return parser, parser.parse_args(argv)


def check_args(args):
    """Error text for arguments the rows cannot take, else None; returns the
    model shape (ViT depth, embed dim, decoder layers) too."""
    if args.pretrain_iters < 1 or args.finetune_iters < 1:
        return 'iterations must be >= 1', None
    configs = [DENSE] + [SCHEDULES[sched]['config'] for sched in args.schedules]
    error = check_model_options(configs, args.cfg_options)
    if error:
        return error, None
    shape = model_shape(args.cfg_options)
    depth = shape[0]
    for sched in args.schedules:
        layers = load_config(SCHEDULES[sched]['config']).model.backbone.prune_layer
        layers = list(layers) if isinstance(layers, (list, tuple)) else [layers]
        if max(layers) >= depth:
            return (f'--schedules {sched}: prunes at blocks {layers}, beyond the '
                    f'{depth}-block ViT the --cfg-options set'), None
    if any(not 1 <= k < depth for k in args.truncate):
        return (f'--truncate: block counts must be in 1..{depth - 1} (the ViT has '
                f'{depth} blocks), got {args.truncate}'), None
    return None, shape


def dry_run(rows, done, args, work, current):
    left, per_iter, test_s = estimate(rows, done, args, work)
    for r in rows:
        print(f"{'done' if r['name'] in done else 'todo'}  {r['name']}")
    print(f'{len(done)}/{len(rows)} rows finished; about {left / 3600:.1f} h left '
          f'({per_iter:.2f} s/iter, {test_s:.0f} s per test); model options: '
          f"{describe_options(current['cfg_options'])}")


def make_data(data_root, work):
    if not osp.exists(osp.join(ROOT, data_root, 'annotations', 'youtube_vis_2021_heldout.json')):
        run([sys.executable, 'tools/misc/make_toy_ytvis.py', '--mode', 'hard', '--out',
             data_root, '--num-videos', str(DATA['num_videos']), '--num-frames',
             str(DATA['num_frames']), '--seed', str(DATA['seed']), '--heldout-ratio',
             str(DATA['heldout_ratio']), '--convert'], osp.join(work, 'make_data.log'))


def main(argv=None):
    parser, args = parse_args(argv)
    RUNNER.env['OMP_NUM_THREADS'] = str(args.threads)
    error, shape = check_args(args)
    if error:
        parser.error(error)
    work = osp.join(ROOT, args.work_dir)
    results_dir = osp.join(ROOT, args.results_dir)
    data_root = osp.join(args.data_root, '')
    current, lock = run_options(args), options_lock(work)
    error = lock.mismatch(current)
    if error:
        parser.error(error)
    depth, embed_dims, decoder_layers = shape
    meta = dict(num_frames=DATA['num_frames'], n_boot=args.n_boot, data=DATA,
                cfg_options=current['cfg_options'], vit_depth=depth, embed_dims=embed_dims,
                decoder_layers=decoder_layers)
    rows, store = plan_rows(args), RowStore(work)
    done = store.finished(r['name'] for r in rows)
    if args.dry_run:
        return dry_run(rows, done, args, work, current)
    if args.report_only:
        return report(work, results_dir, args, meta)
    lock.write(current)
    make_data(data_root, work)
    gt = heldout_gt(osp.join(ROOT, data_root))
    pre_ckpt, _ = train(DENSE, osp.join(work, 'dense_pretrain'), args.pretrain_iters,
                        data_options(data_root) + model_options(DENSE, args.cfg_options),
                        seed=0)
    run_rows(rows, store, lambda row: run_row(row, args, data_root, pre_ckpt, gt, work),
             lambda result: f"AP {result['AP']:.3f} PKR {result['pkr']:.3f} "
                            f"object pixels kept {result['fg_recall']:.3f}")
    report(work, results_dir, args, meta)


if __name__ == '__main__':
    main()
