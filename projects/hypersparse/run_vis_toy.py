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
import glob
import json
import math
import os.path as osp
import sys

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from mmsparse.evaluation.functional.ytvis_bootstrap import \
    YTVISVideoRecords  # noqa: E402
from mmsparse.experiment import (OptionsLock, RowStore,  # noqa: E402
                                 ToolRunner, cached_score, run_rows, seed_mean,
                                 vis, write_report)
from mmsparse.experiment.vis import data_options, heldout_gt  # noqa: E402
from mmsparse.utils.stats import (format_diff, paired_bootstrap,  # noqa: E402
                                  paired_seed_interval)

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
    hooks = Config.fromfile(osp.join(ROOT, spec['config'])).custom_hooks
    index = [h['type'] for h in hooks].index(spec['hook'])
    return [f'custom_hooks.{index}.{k}={v}'
            for k, v in hook_schedule(method, iters).items()]


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
    import torch
    checkpoint = torch.load(ckpt, map_location='cpu', weights_only=False)
    state = checkpoint.get(spec['state_key'])
    if state is None or state.get('masks') is None:
        raise RuntimeError(f'{ckpt}: no masks under "{spec["state_key"]}": the run '
                           'never pruned')
    masks = state['masks']
    weights = checkpoint['state_dict']
    total = sum(m.numel() for m in masks.values())
    kept = sum(int(m.sum()) for m in masks.values())
    zeros = sum(int((weights[n] == 0).sum()) for n in masks)
    info = dict(sparsity=(total - kept) / total, zero_share=zeros / total,
                prunable_weights=total, pruned_weights=total - kept, zero_weights=zeros,
                switch_iter=state.get('switch_unit'))
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
    points = {}
    for path in sorted(glob.glob(osp.join(run_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            for line in f:
                entry = json.loads(line)
                if 'art_reg_grad' in entry and 'iter' in entry:
                    points[entry['iter']] = dict(
                        iter=entry['iter'], art_lambda=entry.get('art_lambda'),
                        art_reg_grad=entry['art_reg_grad'],
                        grad_norm=entry.get('grad_norm'))
    return [points[k] for k in sorted(points)]


def run_row(row, args, data_root, dense_ckpt, gt, work):
    run_dir = osp.join(work, row['name'])
    opts = data_options(data_root) + row['options']
    ckpt, train_time = vis.train_iters(RUNNER, row['config'], run_dir, args.iters, opts,
                                       row['seed'], load_from=dense_ckpt)
    info = pruning_info(ckpt, row['method'])
    metrics, predictions, test_time = vis.test_predictions(RUNNER, ROOT, row['config'], ckpt,
                                                           run_dir, opts)
    records = YTVISVideoRecords.from_predictions(gt, predictions)
    stats = records.stats()
    ap_metric = metrics['youtube_vis/segm_mAP']
    if abs(stats['AP'] - ap_metric) > 6e-4:  # the metric rounds to 3 decimals
        raise RuntimeError(f'{row["name"]}: AP from the saved predictions '
                           f'{stats["AP"]:.4f} != evaluator AP {ap_metric:.3f}')
    if row['method'] == 'art':
        info['reg_log'] = reg_log(run_dir)
    return dict(row, iters=args.iters, dense_ckpt=dense_ckpt, **stats, **info,
                train_seconds=None if train_time is None else round(train_time, 1),
                test_seconds=round(test_time, 1), records=records.to_dict())


# ----------------------------------------------------------------------------- report
def summarize(results, n_boot):
    """Means over seeds, differences to ART and to dense with paired intervals."""
    by_method = {}
    for r in results:
        by_method.setdefault(r['method'], {})[r['seed']] = r
    records = {r['name']: YTVISVideoRecords.from_dict(r['records']) for r in results}
    scores = {name: cached_score(lambda idx, rec=rec: rec.stats(idx)['AP'])
              for name, rec in records.items()}
    groups = []
    for method in [m for m in METHODS if m in by_method]:
        per_seed = by_method[method]
        seeds = sorted(per_seed)
        g = dict(method=method, label=METHODS[method]['label'], seeds=seeds,
                 **{k: float(np.mean([per_seed[s][k] for s in seeds])) for k in METRICS})
        if METHODS[method]['hook'] is not None:
            g['sparsity'] = float(np.mean([per_seed[s]['sparsity'] for s in seeds]))
            g['zero_share'] = float(np.mean([per_seed[s]['zero_share'] for s in seeds]))
        if method == 'art':
            g['forced'] = sum(bool(per_seed[s]['forced']) for s in seeds)
            g['switch_iters'] = [per_seed[s]['switch_iter'] for s in seeds]
        for ref, key in ((REFERENCE, 'art'), ('dense', 'dense')):
            other = by_method.get(ref, {})
            paired = [s for s in seeds if s in other]
            if method == ref or not paired:
                continue
            names = [per_seed[s]['name'] for s in paired]
            rnames = [other[s]['name'] for s in paired]
            n = records[names[0]].num_videos
            g[f'diff_{key}_boot'] = paired_bootstrap(
                seed_mean([scores[x] for x in names]),
                seed_mean([scores[x] for x in rnames]), n, n_boot=n_boot)
            g[f'diff_{key}_seeds'] = paired_seed_interval(
                [per_seed[s]['AP'] for s in paired], [other[s]['AP'] for s in paired])
            g[f'per_seed_{key}'] = {
                s: paired_bootstrap(scores[per_seed[s]['name']], scores[other[s]['name']],
                                    n, n_boot=n_boot) for s in paired}
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
        'seeds.', '',
        '| method | seeds | sparsity | ART switch forced | AP | AP50 | AP75 '
        '| AP - ART [bootstrap over videos] | AP - ART [t over seeds] '
        '| AP - dense [bootstrap over videos] |',
        '|---|---|---|---|---|---|---|---|---|---|']
    for g in groups:
        sparsity = f"{100 * g['sparsity']:.2f} %" if 'sparsity' in g else '0'
        forced = f"{g['forced']}/{len(g['seeds'])}" if 'forced' in g else ''
        cells = [format_diff(g[k], **pct) if k in g else ''
                 for k in ('diff_art_boot', 'diff_art_seeds', 'diff_dense_boot')]
        lines.append(
            f"| {g['label']} | {len(g['seeds'])} | {sparsity} | {forced} | "
            f"{100 * g['AP']:.1f} | {100 * g['AP50']:.1f} | {100 * g['AP75']:.1f} | "
            + ' | '.join(cells) + ' |')
    lines += ['', 'Per row (AP - ART of the same seed: paired bootstrap over videos):', '',
              '| row | AP | AP50 | AP75 | sparsity (masks / zero weights) | switch '
              '| AP - ART | train s | test s |',
              '|---|---|---|---|---|---|---|---|---|']
    per_seed = {(g['method'], s): v for g in groups
                for s, v in g.get('per_seed_art', {}).items()}
    for r in sorted(results, key=lambda r: (list(METHODS).index(r['method']), r['seed'])):
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
        lines.append(
            f"| {r['name']} | {100 * r['AP']:.1f} | {100 * r['AP50']:.1f} | "
            f"{100 * r['AP75']:.1f} | {sparsity} | {switch} | "
            f"{format_diff(diff, **pct) if diff else ''} | {r['train_seconds'] or ''} | "
            f"{r['test_seconds']} |")
    return '\n'.join(lines)


def plot(groups, results, out_file):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    ax, ax2, ax3 = axes
    for i, g in enumerate(groups):
        ax.bar(i, 100 * g['AP'], color=f'C{i}', alpha=0.6)
        seeds = [100 * r['AP'] for r in results if r['method'] == g['method']]
        ax.plot([i] * len(seeds), seeds, 'k.')
        if 'diff_art_boot' in g:
            d = g['diff_art_boot']
            ax2.errorbar([i], [100 * d['diff']],
                         yerr=[[100 * (d['diff'] - d['low'])], [100 * (d['high'] - d['diff'])]],
                         fmt='o', capsize=4, color=f'C{i}')
            per = [100 * v['diff'] for v in g['per_seed_art'].values()]
            ax2.plot([i] * len(per), per, '.', color=f'C{i}', alpha=0.5)
    for a in (ax, ax2):
        a.set_xticks(range(len(groups)))
        a.set_xticklabels([g['label'].replace(' + ', '\n+ ').replace(' (', '\n(')
                           for g in groups], fontsize=8)
        a.grid(alpha=0.3, axis='y')
    ax.set_ylabel('AP (held-out videos, %; dots: seeds)')
    ax.set_title(f'Hard toy VIS, {100 * SPARSITY:g} % sparsity, equal iterations')
    ax2.axhline(0, color='k', ls='--', lw=1)
    ax2.set_ylabel('AP - ART (points; 95 % bootstrap over videos)')
    ax2.set_title('Difference to ART + HyperSparse')
    for j, r in enumerate(r for r in results if r['method'] == 'art'):
        hist = r.get('art_history') or []
        if not hist:
            continue
        units = [h['unit'] for h in hist]
        ax3.plot(units, [h['dense'] for h in hist], '-', color=f'C{j}',
                 label=f"seed {r['seed']} dense")
        ax3.plot(units, [h['pruned'] for h in hist], '--', color=f'C{j}',
                 label=f"seed {r['seed']} pruned copy")
        ax3.axvline(r['switch_iter'], color=f'C{j}', lw=0.8, alpha=0.5)
    ax3.set_xlabel('iteration')
    ax3.set_ylabel('training loss on the criterion batches')
    ax3.set_title('ART stop criterion (vertical: switch)')
    ax3.set_yscale('log')
    ax3.grid(alpha=0.3)
    if ax3.lines:
        ax3.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_file, dpi=110)
    plt.close(fig)


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
    seconds = [r['train_seconds'] for r in results if r['train_seconds']] + \
        [r['test_seconds'] for r in results]
    summary = dict(meta=meta, groups=groups,
                   rows=[{k: v for k, v in r.items() if k != 'records'} for r in results],
                   row_seconds_total=round(float(np.sum(seconds)), 1))
    write_report([work, results_dir], 'vis_toy', table, summary,
                 plot=lambda path: plot(groups, results, path), row_files=files)
    print(table)
    print(f'wrote {results_dir}/vis_toy.{{md,json,png}} and rows/')


def estimate(rows, done, args, work):
    """Seconds left, from the finished rows' timings (or the defaults)."""
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
    """Measure ``ρ_i = |∂R/∂w_i| / √v̂_i`` on the dense checkpoint.

    ``v̂`` is AdamW's bias-corrected second moment of the (clipped) task
    gradient saved with the dense model: the per-weight scale AdamW divides
    by. With the regularizer's gradient added after clipping, a weight's
    update is driven by the regularizer once ``λ·ρ_i`` exceeds ~1, so
    ``1 / median(ρ)`` over the weights below the κ-quantile is the λ at
    which ART starts to move them, and over the largest 10 % the λ at which
    it starts to erode the weights that should stay.
    """
    import torch
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope

    from mmsparse.art import (DEFAULT_EXCLUDE, global_magnitude_masks,
                              hypersparse_grad, hypersparse_stats,
                              layers_above, prunable_weights)
    from mmsparse.registry import MODELS
    cfg = Config.fromfile(osp.join(ROOT, METHODS['art']['config']))
    hook = next(h for h in cfg.custom_hooks if h['type'] == 'ARTHook')
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    checkpoint = torch.load(args.dense_ckpt, map_location='cpu', weights_only=False)
    model.load_state_dict(checkpoint['state_dict'])
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    wrapper.optimizer.load_state_dict(checkpoint['optimizer'])
    beta2 = wrapper.optimizer.param_groups[0]['betas'][1]
    eps = wrapper.optimizer.param_groups[0]['eps']
    exclude = hook.get('exclude')
    weights = prunable_weights(model, DEFAULT_EXCLUDE if exclude is None else exclude,
                               include_frozen=hook.get('include_frozen', False),
                               prune_only=hook.get('prune_only'))
    grads = hypersparse_grad(list(weights.values()), SPARSITY)
    rho, mags = [], []
    for w, g in zip(weights.values(), grads):
        state = wrapper.optimizer.state[w]
        step = float(state['step'])
        v_hat = state['exp_avg_sq'] / (1 - beta2 ** step)
        rho.append((g.abs() / (v_hat.sqrt() + eps)).flatten())
        mags.append(w.detach().abs().flatten())
    rho, mags = torch.cat(rho), torch.cat(mags)
    order = mags.argsort()
    n = len(mags)
    small = rho[order[:int(SPARSITY * n)]]
    large = rho[order[int(0.9 * n):]]
    stats = hypersparse_stats(list(weights.values()), SPARSITY)
    steps = ART_STEPS
    lam0, eta = hook['lambda_init'], hook['eta']
    lam_end = lam0 * eta ** (steps - 1)
    print(f'{n} prunable weights, κ = {SPARSITY}, AdamW step {step:.0f} of the dense model')
    print(f"HyperSparse: q_κ = {stats['quantile']:.4g}, gain s·‖w‖₁/T = {stats['gain']:.3f}, "
          f"‖∇R‖ = {stats['grad_norm']:.4g}")
    for name, part in (('below the κ-quantile', small), ('largest 10 %', large)):
        q = torch.quantile(part[torch.randperm(len(part))[:1_000_000]],
                           torch.tensor([0.1, 0.5, 0.9])).tolist()
        print(f'ρ = |∂R/∂w| / √v̂, {name}: 10/50/90 % = {q[0]:.4g} / {q[1]:.4g} / {q[2]:.4g}'
              f' -> λ·ρ = 1 at the median for λ = {1 / q[1]:.3g}')
        for label, lam in (('λ0', lam0), (f'λ at ART step {steps - 1}', lam_end)):
            print(f'    {label} = {lam:.3g}: median λ·ρ = {lam * q[1]:.3g}')
    print(f"λ·‖∇R‖ at λ0 = {lam0 * stats['grad_norm']:.3g}, at λ_end = "
          f"{lam_end * stats['grad_norm']:.3g} (the task gradient is clipped to norm "
          f"{(cfg.optim_wrapper.get('clip_grad') or {}).get('max_norm')})")
    for label, names in (('the config\'s exclude', weights),
                         ('the hooks\' default exclusions only',
                          prunable_weights(model, DEFAULT_EXCLUDE, include_frozen=False))):
        masks = global_magnitude_masks(names, SPARSITY)
        above = layers_above(masks, 0.99)
        print(f'global magnitude masks at {SPARSITY:g} on the dense model, {label}: '
              f'{len(above)} of {len(masks)} layers pruned above 99 %'
              + (': ' + ', '.join(f'{k} ({100 * v:.1f} %)' for k, v in above.items())
                 if above else ''))


def _progress_line(result):
    extra = ''
    if 'sparsity' in result:
        extra = f" sparsity {100 * result['sparsity']:.2f} %"
    if result['method'] == 'art':
        extra += f" switch {result['switch_reason']} at iter {result['switch_iter']}"
    return f"AP {result['AP']:.3f}{extra}"


def main(argv=None):
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
    RUNNER.env['OMP_NUM_THREADS'] = str(args.threads)
    if args.iters < 4:
        parser.error('--iters must be >= 4 (ART needs an ART step and fine-tuning)')
    work = osp.join(ROOT, args.work_dir)
    results_dir = osp.join(ROOT, args.results_dir)
    data_root = osp.join(args.data_root, '')
    dense_ckpt = osp.join(ROOT, args.dense_ckpt)
    if args.calibrate:
        calibrate(argparse.Namespace(dense_ckpt=dense_ckpt))
        return
    store = RowStore(work)
    lock = OptionsLock(work, legacy=lambda: dict(iters=store.read(
        osp.basename(store.files()[0])[:-len('.json')])['iters']) if store.files() else None,
        holds_work=lambda: bool(store.files()))
    error = lock.mismatch(dict(iters=args.iters))
    if error:
        parser.error(error)
    rows = plan_rows(args)
    done = store.finished(r['name'] for r in rows)
    if args.dry_run:
        left, test_s = estimate(rows, done, args, work)
        for r in rows:
            print(f"{'done' if r['name'] in done else 'todo'}  {r['name']}  {r['config']}  "
                  + ' '.join(r['options']))
        ckpt_note = '' if osp.exists(dense_ckpt) else \
            f' (missing: {args.dense_ckpt}; run projects/vpp/run_toy_comparison.py first)'
        print(f'dense checkpoint {args.dense_ckpt}{ckpt_note}')
        print(f'{len(done)}/{len(rows)} rows finished; about {left / 60:.0f} min left '
              f'({args.iters} iterations per row at {args.sec_per_iter:.2f} s/iter, '
              f'{test_s:.0f} s per test and start-up)')
        return
    if args.report_only:
        report(work, results_dir, args)
        return
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
