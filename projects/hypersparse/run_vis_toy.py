"""ART on the toy VIS model: ART + HyperSparse vs GMP vs one-shot at 90 %, equal budgets.

    python projects/hypersparse/run_vis_toy.py [--work-dir DIR] [--results-dir DIR]
        [--dense-ckpt CKPT] [--iters 400] [--seeds 0 1 2]
        [--methods dense art gmp oneshot] [--n-boot 1000] [--threads 1]
        [--dry-run | --report-only | --calibrate]

ART on the VIS toy model as a test of the method: a dense model trained to
convergence first, λ suited to AdamW, then ART vs GMP vs one-shot at 90 %
with the same total iterations, and AP with a paired bootstrap interval over
held-out videos. Protocol:

1. the dense model: the hard toy set's 2,000-iteration pre-training of the
   VPP toy benchmark (``projects/vpp/run_toy_comparison.py``, which makes the
   data and writes ``work_dirs/vpp_toy_benchmark/dense_pretrain/iter_2000.pth``;
   this script reuses that checkpoint, ``--dense-ckpt``, and never trains it);
2. rows, each fine-tuned from that checkpoint for the same ``--iters`` with
   its own training seed and the base's lr schedule (30-iteration warm-up,
   x0.1 at 80 %):

   * ``dense``: continued dense training (the reference for the cost of 90 %);
   * ``art``: ARTHook + HyperSparse, no warm-up, an ART step every
     ``iters / 40`` iterations, the switch by the loss criterion (pruned copy
     vs the dense model on the same 4 training batches) or forced when 40 %
     of the budget is left (``configs/art/art_mask2former_vit_toy-ytvis21_hard.py``,
     λ0/η derived for AdamW there; ``--calibrate`` re-measures the numbers);
   * ``gmp``: gradual magnitude pruning, cubic schedule over the first 60 %,
     then fine-tuning under the final mask (``configs/art/gmp_...``);
   * ``oneshot``: global magnitude pruning before the first step, the whole
     budget as fine-tuning (``configs/art/oneshot_...``);

   the hooks' schedules are scaled to ``--iters`` (:func:`hook_schedule`;
   the configs hold the values for the default 400). The pruned weights are
   the linear layers of the 6 ViT blocks (2.65 M) for every method: with the
   hooks' default exclusions alone, one global threshold over backbone and
   head follows the initialisation scale and prunes every ViT block to
   99.2-99.7 % at 90 % (``--calibrate`` prints it; see the configs);
3. ``tools/test.py`` on the held-out videos (AP, AP50, AP75 and the
   predictions, matched once per video into
   :class:`~mmsparse.evaluation.functional.ytvis_bootstrap.YTVISVideoRecords`).

Training, testing, the held-out ground truth and the data options are those
of the VPP toy benchmark (:mod:`mmsparse.experiment.vis`). Every row is one
JSON file ``<work-dir>/rows/<row>.json`` written atomically when the row is
finished (its done-marker): a killed run continues with the first unfinished
row (a half-trained row resumes from its last checkpoint). A work dir keeps
``--iters`` in ``<work-dir>/run_options.json``; a rerun with another value is
refused before any work (use another ``--work-dir``). Each
pruned row records its final sparsity (of the masks and of the saved
weights), and the ART rows whether the switch was forced, when, λ and
``λ·‖∇R‖`` over the ART steps. The report (``vis_toy.{md,json,png}``, copied
with the row files into ``--results-dir``) is rebuilt from the finished rows
(``--report-only``): mean AP over seeds, the difference of every method to
ART (95 % paired bootstrap over held-out videos on the seed-mean, and a
Student-t interval over seeds) and to dense continued. Statistics:
:mod:`mmsparse.utils.stats`.

Cost (``--dry-run`` prints it): a row is ``iters`` training iterations
(ART steps add ~8 forward passes per step) plus the test on the 200 held-out
videos and the start-up; measured times are in
``projects/hypersparse/README.md`` ("ART on the toy VIS model").
"""
import argparse
import math
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from mmsparse.experiment import (RowStore, ToolRunner, artifacts,  # noqa: E402
                                 items, markdown_table, plan, run_rows, tables,
                                 vis, write_report)
from mmsparse.experiment.options import \
    hook_options as config_hook_options  # noqa: E402
from mmsparse.experiment.vis import data_options, heldout_gt  # noqa: E402
from mmsparse.utils.art_report import plot_vis_toy  # noqa: E402
from mmsparse.utils.stats import format_diff  # noqa: E402

#: The dense hard-toy config (of the VPP toy benchmark).
DENSE = 'configs/toy/mask2former_vit_toy-ytvis21_hard.py'
RUNNER = ToolRunner(ROOT)

SPARSITY = 0.9
DEFAULT_ITERS = 400
#: share of the budget left for fine-tuning at the latest ART switch and after GMP's last step
FINETUNE_SHARE = 0.4
#: ART steps in the longest ART phase, GMP pruning steps
ART_STEPS, GMP_STEPS = 24, 12
METHODS = dict(
    dense=dict(config=DENSE, label='dense (continued)', hook=None),
    art=dict(config='configs/art/art_mask2former_vit_toy-ytvis21_hard.py',
             label='ART + HyperSparse', hook='ARTHook',
             state_key='art_state'),
    gmp=dict(config='configs/art/gmp_mask2former_vit_toy-ytvis21_hard.py',
             label='GMP (cubic)', hook='GradualMagnitudePruningHook',
             state_key='gmp_pruning_state'),
    oneshot=dict(config='configs/art/oneshot_mask2former_vit_toy-ytvis21_hard.py',
                 label='one-shot + fine-tune', hook='OneShotMagnitudePruningHook',
                 state_key='oneshot_pruning_state'),
)
REFERENCE = 'art'
METRICS = ('AP', 'AP50', 'AP75')
DENSE_CKPT = 'work_dirs/vpp_toy_benchmark/dense_pretrain/iter_2000.pth'
#: seconds per row outside training (test on 200 held-out videos +
#: start-ups), the estimate's calibration (measured times: the README)
TEST_SECONDS = 200.
#: extra ART cost per ART step: 4 eval batches, pruned copy and dense model
ART_STEP_FORWARDS = 8


def hook_schedule(method, iters):
    """The pruning hook's schedule for a run of ``iters`` iterations.

    ART: an ART step every ``(1 - FINETUNE_SHARE) · iters / ART_STEPS``
    iterations (rounded up), forced switch when ``FINETUNE_SHARE`` of the run
    is left: at most ``ART_STEPS`` steps (exactly that many at 400 or any
    multiple of 40 iterations), so λ spans the config's range whatever the
    budget. GMP: cubic schedule from 0 to the same iteration in at most
    ``GMP_STEPS`` steps. One-shot: before the first step. Dense: no hook.
    """
    finetune = int(round(FINETUNE_SHARE * iters))
    if method == 'art':
        return dict(interval=max(1, math.ceil((iters - finetune) / ART_STEPS)),
                    min_finetune=finetune)
    if method == 'gmp':
        end = iters - finetune
        return dict(begin=0, end=end, interval=max(1, math.ceil(end / GMP_STEPS)))
    if method == 'oneshot':
        return dict(prune_at=0)
    return {}


def hook_options(method, iters):
    """``--cfg-options`` setting :func:`hook_schedule` on the config's hook."""
    spec = METHODS[method]
    if spec['hook'] is None:
        return []
    from mmengine.config import Config
    return config_hook_options(Config.fromfile(osp.join(ROOT, spec['config'])), spec['hook'],
                               hook_schedule(method, iters))


def plan_rows(args):
    rows = []
    for seed in args.seeds:
        for method in args.methods:
            rows.append(dict(name=f'{method}_seed{seed}', method=method, seed=seed,
                             config=METHODS[method]['config'],
                             options=hook_options(method, args.iters)))
    return rows


# ----------------------------------------------------------------------------- one row
def pruning_info(ckpt, method):
    """Final sparsity (masks and saved weights) and, for ART, the switch, read
    from the hook state in the final checkpoint."""
    spec = METHODS[method]
    if spec['hook'] is None:
        return {}
    state, info = artifacts.pruning_state(ckpt, spec['state_key'])
    info['switch_iter'] = state.get('switch_unit')
    if method == 'art':
        switch = state.get('switch_info') or {}
        info.update(
            switch_reason=switch.get('reason'),
            forced=switch.get('reason') != 'criterion',
            switch_model_step=switch.get('model_step'),
            art_steps=len(state.get('history', [])),
            art_history=[{k: v for k, v in h.items()} for h in state.get('history', [])])
    return info


def reg_log(run_dir):
    """λ, λ·‖∇R‖ and the task gradient norm (before clipping) logged over
    the ART phase, from mmengine's ``vis_data/scalars.json`` files."""
    return artifacts.logged_scalars(run_dir, 'art_reg_grad',
                                    ('art_lambda', 'art_reg_grad', 'grad_norm'))


def run_row(row, args, data_root, dense_ckpt, gt, work):
    run_dir = osp.join(work, row['name'])
    opts = data_options(data_root) + row['options']
    ckpt, train_time = vis.train_iters(RUNNER, row['config'], run_dir, args.iters, opts,
                                       row['seed'], load_from=dense_ckpt)
    info = pruning_info(ckpt, row['method'])
    _, records, stats, test_time = items.scored_video_test(
        RUNNER, ROOT, row['config'], ckpt, run_dir, opts, gt, row['name'])
    if row['method'] == 'art':
        info['reg_log'] = reg_log(run_dir)
    return dict(row, iters=args.iters, dense_ckpt=dense_ckpt, **stats, **info,
                **items.timings(train_time, test_time), records=records.to_dict())


# ----------------------------------------------------------------------------- report
def summarize(results, n_boot):
    """Means over seeds, differences to ART and to dense with paired intervals."""
    by_method = tables.by_seed(results, 'method')
    records, scores = items.video_scores(results)
    score = tables.mean_row_scores(scores)
    groups = []
    for method in [m for m in METHODS if m in by_method]:
        per_seed = by_method[method]
        seeds = sorted(per_seed)
        g = dict(method=method, label=METHODS[method]['label'], seeds=seeds,
                 **tables.seed_means(per_seed, METRICS))
        if METHODS[method]['hook'] is not None:
            g.update(tables.seed_means(per_seed, ('sparsity', 'zero_share')))
        if method == 'art':
            g['forced'] = sum(bool(per_seed[s]['forced']) for s in seeds)
            g['switch_iters'] = [per_seed[s]['switch_iter'] for s in seeds]
        for ref, key in ((REFERENCE, 'art'), ('dense', 'dense')):
            diff = None if method == ref else tables.contrast(
                per_seed, by_method.get(ref, {}), score,
                lambda r: records[r['name']].num_videos, 'AP', n_boot, per_seed=True)
            if diff is not None:
                g[f'diff_{key}_boot'] = diff['boot']
                g[f'diff_{key}_seeds'] = diff['seed_interval']
                g[f'per_seed_{key}'] = diff['per_seed']
        groups.append(g)
    return groups


def _reg_summary(r):
    """'λ0 … λend, λ·‖∇R‖ a … b' of one ART row (from its ART history and log)."""
    hist, log = r.get('art_history') or [], r.get('reg_log') or []
    parts = []
    if hist:
        parts.append(f"λ {hist[0]['lambda']:.3g} → {hist[-1]['lambda']:.3g}")
    if log:
        parts.append(f"λ·‖∇R‖ {log[0]['art_reg_grad']:.3g} → {log[-1]['art_reg_grad']:.3g}")
    return ', '.join(parts)


def _row_cells(r, per_seed, pct):
    """The cells of one row of the per-row table."""
    sparsity = (f"{100 * r['sparsity']:.2f} / {100 * r['zero_share']:.2f} %"
                if 'sparsity' in r else '')
    switch = ''
    if r['method'] == 'art':
        how = f"forced ({r['switch_reason']})" if r['forced'] else 'criterion'
        switch = (f"{how} at "
                  f"iter {r['switch_iter']}, model of ART step {r['switch_model_step']} "
                  f"of {r['art_steps']}; {_reg_summary(r)}")
    elif r['method'] in ('gmp', 'oneshot'):
        switch = f"final mask at iter {r['switch_iter']}"
    diff = per_seed.get((r['method'], r['seed']))
    return [r['name'], f"{100 * r['AP']:.1f}", f"{100 * r['AP50']:.1f}",
            f"{100 * r['AP75']:.1f}", sparsity, switch,
            format_diff(diff, **pct) if diff else '', r['train_seconds'] or '',
            r['test_seconds']]


def render_tables(groups, results, meta):
    pct = dict(scale=100, digits=1)
    lines = [
        f"Hard toy YouTube-VIS ({meta['heldout_videos']} held-out videos), ViT 6 blocks dim "
        f"192 + Mask2Former; every row fine-tunes the same dense checkpoint "
        f"(`{meta['dense_ckpt']}`) for {meta['iters']} iterations with its own training seed; "
        f"pruned rows at {100 * SPARSITY:g} % global magnitude sparsity of the "
        f"{meta['prunable_weights']} prunable weights (the configs' `prune_only`: the linear "
        'layers of the ViT blocks). AP columns: mean over seeds. Differences in AP '
        'points with 95 % intervals: paired bootstrap over held-out videos '
        f"({meta['n_boot']} draws, seed-mean of both rows on each draw) and Student-t over "
        'seeds.', '']
    table = []
    for g in groups:
        table.append([g['label'], len(g['seeds']),
                      f"{100 * g['sparsity']:.2f} %" if 'sparsity' in g else '0',
                      f"{g['forced']}/{len(g['seeds'])}" if 'forced' in g else '',
                      f"{100 * g['AP']:.1f}", f"{100 * g['AP50']:.1f}", f"{100 * g['AP75']:.1f}"]
                     + [format_diff(g[k], **pct) if k in g else ''
                        for k in ('diff_art_boot', 'diff_art_seeds', 'diff_dense_boot')])
    lines += markdown_table(
        ['method', 'seeds', 'sparsity', 'ART switch forced', 'AP', 'AP50', 'AP75',
         'AP - ART [bootstrap over videos]', 'AP - ART [t over seeds]',
         'AP - dense [bootstrap over videos]'], table)
    per_seed = {(g['method'], s): v for g in groups
                for s, v in g.get('per_seed_art', {}).items()}
    ordered = sorted(results, key=lambda r: (list(METHODS).index(r['method']), r['seed']))
    lines += ['', 'Per row (AP - ART of the same seed: paired bootstrap over videos):', '']
    lines += markdown_table(
        ['row', 'AP', 'AP50', 'AP75', 'sparsity (masks / zero weights)', 'switch',
         'AP - ART', 'train s', 'test s'], [_row_cells(r, per_seed, pct) for r in ordered])
    return '\n'.join(lines)


def report(work, results_dir, args):
    store = RowStore(work)
    files, results = store.files(), store.all()
    if not results:
        print('no finished rows yet')
        return
    groups = summarize(results, args.n_boot)
    meta = dict(n_boot=args.n_boot, sparsity=SPARSITY, iters=results[0]['iters'],
                prunable_weights=next((r['prunable_weights'] for r in results
                                       if 'prunable_weights' in r), None),
                dense_ckpt=results[0]['dense_ckpt'],
                seeds=sorted({r['seed'] for r in results}),
                heldout_videos=len(results[0]['records']['video_ids']),
                schedules={m: hook_schedule(m, results[0]['iters']) for m in METHODS})
    table = render_tables(groups, results, meta)
    summary = dict(meta=meta, groups=groups, rows=tables.without(results),
                   row_seconds_total=tables.seconds_total(results))
    write_report([work, results_dir], 'vis_toy', table, summary,
                 plot=lambda path: plot_vis_toy(groups, results, path, SPARSITY),
                 row_files=files)
    print(table)
    print(f'wrote {results_dir}/vis_toy.{{md,json,png}} and rows/')


def estimate(rows, done, args, work):
    """Seconds left, from the finished rows' timings (or the defaults)."""
    import numpy as np
    per_iter, test_s = {}, []
    for r in map(RowStore(work).read, done):
        test_s.append(r['test_seconds'])
        if r['train_seconds']:
            per_iter.setdefault(r['method'], []).append(r['train_seconds'] / r['iters'])
    test_s = float(np.mean(test_s)) if test_s else TEST_SECONDS
    # ART: ART_STEP_FORWARDS forward passes (~1/3 of a training step each) per ART step
    art_extra = ART_STEPS * ART_STEP_FORWARDS * args.sec_per_iter / 3 / args.iters
    left = 0.
    for r in rows:
        if r['name'] in done:
            continue
        default = args.sec_per_iter + (art_extra if r['method'] == 'art' else 0.)
        left += np.mean(per_iter.get(r['method'], [default])) * args.iters + test_s
    return left, test_s


# ----------------------------------------------------------------------------- λ for AdamW
def calibrate(args):
    """Measure ``ρ_i = |∂R/∂w_i| / √v̂_i`` (the regularizer's gradient over
    AdamW's per-weight scale) on the dense checkpoint for the ART config's
    λ0 / η (:mod:`mmsparse.utils.art_calibration`)."""
    import torch
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope

    from mmsparse.art import DEFAULT_EXCLUDE, prunable_weights
    from mmsparse.registry import MODELS
    from mmsparse.utils.art_calibration import calibration_report
    cfg = Config.fromfile(osp.join(ROOT, METHODS['art']['config']))
    hook = next(h for h in cfg.custom_hooks if h['type'] == 'ARTHook')
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    checkpoint = torch.load(args.dense_ckpt, map_location='cpu', weights_only=False)
    model.load_state_dict(checkpoint['state_dict'])
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    wrapper.optimizer.load_state_dict(checkpoint['optimizer'])
    exclude = hook.get('exclude')
    weights = prunable_weights(model, DEFAULT_EXCLUDE if exclude is None else exclude,
                               include_frozen=hook.get('include_frozen', False),
                               prune_only=hook.get('prune_only'))
    defaults = prunable_weights(model, DEFAULT_EXCLUDE, include_frozen=False)
    print('\n'.join(calibration_report(
        weights, wrapper.optimizer, SPARSITY, hook['lambda_init'], hook['eta'], ART_STEPS,
        max_norm=(cfg.optim_wrapper.get('clip_grad') or {}).get('max_norm'),
        other_weights={'the hooks\' default exclusions only': defaults})))


def _progress_line(result):
    extra = ''
    if 'sparsity' in result:
        extra = f" sparsity {100 * result['sparsity']:.2f} %"
    if result['method'] == 'art':
        extra += f" switch {result['switch_reason']} at iter {result['switch_iter']}"
    return f"AP {result['AP']:.3f}{extra}"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/hypersparse_vis_toy')
    parser.add_argument('--results-dir', default='projects/hypersparse/results/vis_toy')
    parser.add_argument('--data-root', default='data/toy_ytvis21_hard/')
    parser.add_argument('--dense-ckpt', default=DENSE_CKPT,
                        help='the trained dense hard-toy model every row starts from '
                        '(made by projects/vpp/run_toy_comparison.py)')
    parser.add_argument('--iters', type=int, default=DEFAULT_ITERS,
                        help='training iterations of every row')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--methods', nargs='+', default=list(METHODS), choices=list(METHODS))
    parser.add_argument('--n-boot', type=int, default=1000)
    parser.add_argument('--threads', type=int, default=1,
                        help='OMP_NUM_THREADS of the runs (2 on an idle 2-core machine)')
    parser.add_argument('--sec-per-iter', type=float, default=0.55,
                        help='training speed assumed by the estimate before a row finished')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the rows, which are finished, and the time left')
    parser.add_argument('--report-only', action='store_true',
                        help='only rebuild the report from the finished rows')
    parser.add_argument('--calibrate', action='store_true',
                        help='print the regularizer-to-AdamW gradient ratio on the dense '
                        'checkpoint for the ART config\'s λ0/η')
    args = parser.parse_args(argv)
    if args.iters < 4:
        parser.error('--iters must be >= 4 (ART needs an ART step and fine-tuning)')
    return parser, args


def dry_run(rows, done, args, work, dense_ckpt):
    left, test_s = estimate(rows, done, args, work)
    plan.print_rows(rows, done, lambda r: f"{r['config']}  " + ' '.join(r['options']))
    ckpt_note = '' if osp.exists(dense_ckpt) else \
        f' (missing: {args.dense_ckpt}; run projects/vpp/run_toy_comparison.py first)'
    print(f'dense checkpoint {args.dense_ckpt}{ckpt_note}')
    print(f'{len(done)}/{len(rows)} rows finished; about {left / 60:.0f} min left '
          f'({args.iters} iterations per row at {args.sec_per_iter:.2f} s/iter, '
          f'{test_s:.0f} s per test and start-up)')


def main(argv=None):
    parser, args = parse_args(argv)
    RUNNER.env['OMP_NUM_THREADS'] = str(args.threads)
    work = osp.join(ROOT, args.work_dir)
    results_dir = osp.join(ROOT, args.results_dir)
    data_root = osp.join(args.data_root, '')
    dense_ckpt = osp.join(ROOT, args.dense_ckpt)
    if args.calibrate:
        calibrate(argparse.Namespace(dense_ckpt=dense_ckpt))
        return
    store = RowStore(work)
    lock = plan.rows_lock(store, legacy=lambda first: dict(iters=first['iters']))
    error = lock.mismatch(dict(iters=args.iters))
    if error:
        parser.error(error)
    rows = plan_rows(args)
    done = store.finished(r['name'] for r in rows)
    if args.dry_run:
        return dry_run(rows, done, args, work, dense_ckpt)
    if args.report_only:
        return report(work, results_dir, args)
    heldout = osp.join(ROOT, data_root, 'annotations', 'youtube_vis_2021_heldout.json')
    for path, what in ((heldout, 'the hard toy set'), (dense_ckpt, 'the dense checkpoint')):
        if not osp.exists(path):
            raise SystemExit(f'run_vis_toy: {what} is missing ({path}); '
                             'projects/vpp/run_toy_comparison.py makes it')
    lock.write(dict(iters=args.iters))
    gt = heldout_gt(osp.join(ROOT, data_root))
    run_rows(rows, store, lambda row: run_row(row, args, data_root, dense_ckpt, gt, work),
             _progress_line)
    report(work, results_dir, args)


if __name__ == '__main__':
    main()
