"""Cost of P3B's probes: a P3B pruning-run step against the dense step.

    python tools/analysis_tools/benchmark_p3b_probes.py [--arch deit-small]
        [--batches 8 64] [--img-size 224] [--num-classes 1000]
        [--repeat 5] [--threads N] [--probe-width 32]
        [--probe-fraction 0.25] [--window 250 --interval 1000]
        [--profile] [--out-dir work_dirs/benchmark_p3b_probes]

One process, one model architecture, every variant timed in the same
rounds (interleaved, so load from other processes hits all alike). A step
is a full training iteration: forward, cross-entropy, backward, AdamW step
of the model, plus for P3B ``P3BPruner.before_iter`` / ``after_iter`` (gates
active with gradients, Taylor scores, the probe forward / backward / AdamW
step and the block-benefit statistics; no mask update). Variants:

- ``dense``: plain fine-tuning step;
- ``gates only``: P3B without probes (gates + Taylor scores): the cost of
  P3B between the probe windows; the gates are folded into the layer
  parameters (:class:`~mmsparse.p3b.gates.GatedViT`, ``fold=True``);
- ``gates only, activation gates``: the same with the gates multiplying
  the activations (``fold=False``, the implementation before the folding);
- ``reference``: the paper's probes (``probe='reference'``);
- ``cheap``: :class:`~mmsparse.p3b.probes.CheapProbeBank` on the whole
  batch; ``cheap, subset``: on ``--probe-fraction`` of it;
- derived (not timed separately): ``cheap, window W/I`` = probes in W of
  every I iterations, the mean step cost ``(W t_probe + (I - W)
  t_gates) / I``.

Per variant also: probe parameters, the P3B state a checkpoint carries
(gates, statistics, probes and their AdamW state; bytes of ``torch.save``)
against the model's state dict, the floats all-reduced per iteration in a
multi-GPU run (probe gradients + gate gradients + benefits), and the bytes
autograd saves for the probes' backward (the probes' activation memory).
Writes ``probe_cost.md`` and ``probe_cost.json`` to ``--out-dir``; with
``--profile`` also ``profile_b{batch}.txt``: the operators of one more step
of every variant under ``torch.profiler`` (self CPU time).
"""
import argparse
import copy
import io
import os
import os.path as osp
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope

import mmsparse  # noqa: F401
from mmsparse.p3b import P3BPruner, non_block_params
from mmsparse.registry import MODELS
from mmsparse.utils.benchmark import format_table, write_json

BIG = 10**9  # schedule far away: no mask update during the benchmark


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', default='deit-small')
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--num-classes', type=int, default=1000)
    parser.add_argument('--batches', type=int, nargs='+', default=[8, 64])
    parser.add_argument('--repeat', type=int, default=5,
                        help='timed rounds (each variant once per round)')
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--probe-width', type=int, default=32)
    parser.add_argument('--probe-fraction', type=float, default=0.25)
    parser.add_argument('--window', type=int, default=250,
                        help='probe window W of the derived row')
    parser.add_argument('--interval', type=int, default=1000,
                        help='mask update interval I of the derived row')
    parser.add_argument('--variants', nargs='+', default=None,
                        help='subset of the timed variants')
    parser.add_argument('--profile', action='store_true',
                        help='operator table of one profiled step per '
                        'variant')
    parser.add_argument('--out-dir', default='work_dirs/benchmark_p3b_probes')
    return parser.parse_args()


def classifier_cfg(arch: str, img_size: int, num_classes: int) -> dict:
    from mmpretrain.models.backbones import VisionTransformer
    dims = VisionTransformer.arch_zoo[arch]['embed_dims']
    return dict(
        type='ImageClassifier',
        backbone=dict(type='VisionTransformer', arch=arch,
                      img_size=img_size, patch_size=16),
        neck=None,
        head=dict(type='VisionTransformerClsHead', num_classes=num_classes,
                  in_channels=dims))


#: timed variants: P3BPruner arguments (None = dense, no pruner; ``fold``
#: goes to ``GatedViT.set_fold``)
def variants(args) -> dict:
    return {
        'dense': None,
        'gates only': dict(block_budget='uniform'),
        'gates only, activation gates': dict(block_budget='uniform',
                                             fold=False),
        'reference': dict(probe='reference'),
        'cheap': dict(probe='cheap', probe_width=args.probe_width),
        f'cheap, subset {args.probe_fraction:g}': dict(
            probe='cheap', probe_width=args.probe_width,
            probe_fraction=args.probe_fraction),
    }


class Variant:
    """A model copy, its optimizer and (maybe) a pruner."""

    def __init__(self, model, num_classes: int, kwargs) -> None:
        self.model = model
        self.optim = torch.optim.AdamW(model.parameters(), lr=1e-4)
        self.pruner = None
        if kwargs is not None:
            kwargs = dict(kwargs)
            fold = kwargs.pop('fold', True)
            self.pruner = P3BPruner(
                model, num_classes, 0.5, start=0, sparse=BIG, final=BIG + 1,
                interval=BIG, non_block_params=non_block_params(model),
                **kwargs)
            self.pruner.gated.set_fold(fold)
        self.step_idx = 0

    def step(self, x, y) -> None:
        if self.pruner is not None:
            self.pruner.before_iter(self.step_idx)
        loss = F.cross_entropy(self.model(x, mode='tensor'), y)
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        self.optim.step()
        if self.pruner is not None:
            self.pruner.after_iter(self.step_idx, y)
        self.step_idx += 1


def _bytes(obj) -> int:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.tell()


def probe_autograd_bytes(variant: Variant, x, y) -> int:
    """Bytes autograd keeps for the backward of one probe step."""
    if variant.pruner is None or variant.pruner.probes is None:
        return 0
    seen = {}

    def pack(t):
        seen[(t.data_ptr(), t.numel(), t.dtype)] = \
            t.numel() * t.element_size()
        return t

    pruner = variant.pruner
    pruner.before_iter(variant.step_idx)
    loss = F.cross_entropy(variant.model(x, mode='tensor'), y)
    loss.backward()
    variant.model.zero_grad(set_to_none=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        pruner.after_iter(variant.step_idx, y)
    variant.step_idx += 1
    return sum(seen.values())


def allreduce_floats(variant: Variant) -> int:
    pruner = variant.pruner
    if pruner is None:
        return 0
    gates = sum(g.numel() for g in pruner.gated.gates.values())
    if pruner.probes is None:
        return gates
    probes = sum(p.numel() for p in pruner.probes.parameters())
    return probes + gates + 2 * pruner.gated.num_sub_blocks + 1


def measure(batch: int, args, base_model) -> list:
    torch.manual_seed(0)
    x = torch.randn(batch, 3, args.img_size, args.img_size)
    y = torch.randint(0, args.num_classes, (batch, ))
    chosen = variants(args)
    if args.variants:
        chosen = {k: v for k, v in chosen.items()
                  if k in args.variants or k == 'dense'}
    runs = {name: Variant(copy.deepcopy(base_model), args.num_classes, kw)
            for name, kw in chosen.items()}
    model_bytes = _bytes(base_model.state_dict())
    rows = {}
    for name, var in runs.items():
        saved = probe_autograd_bytes(var, x, y)  # also warms up
        var.step(x, y)  # warm-up (AdamW state exists from here)
        pruner = var.pruner
        state = 0 if pruner is None else _bytes(pruner.get_state())
        probes = 0 if pruner is None or pruner.probes is None else sum(
            p.numel() for p in pruner.probes.parameters())
        rows[name] = dict(
            variant=name, batch=batch, probe_params_M=probes / 1e6,
            ckpt_state_MB=state / 2**20,
            ckpt_state_vs_model=state / model_bytes,
            allreduce_MB=4 * allreduce_floats(var) / 2**20,
            probe_autograd_MB=saved / 2**20, times=[])
    for _ in range(args.repeat):
        for name, var in runs.items():
            start = time.perf_counter()
            var.step(x, y)
            rows[name]['times'].append(time.perf_counter() - start)
    dense = statistics.median(rows['dense']['times'])
    dense_min = min(rows['dense']['times'])
    out = []
    for row in rows.values():
        row['s_per_step'] = statistics.median(row['times'])
        row['vs_dense'] = row['s_per_step'] / dense
        row['vs_dense_min'] = min(row['times']) / dense_min
        out.append(row)
    gates = rows.get('gates only')
    for name in ('reference', 'cheap'):
        if gates is None or name not in rows:
            continue
        frac = args.window / args.interval
        t = frac * rows[name]['s_per_step'] + (1 - frac) * \
            gates['s_per_step']
        t_min = frac * min(rows[name]['times']) + (1 - frac) * min(
            gates['times'])
        out.append(dict(
            rows[name], variant=f'{name}, window {args.window}/'
            f'{args.interval} (derived)', s_per_step=t, vs_dense=t / dense,
            vs_dense_min=t_min / dense_min, times=[]))
    if args.profile:
        write_profile(runs, x, y,
                      osp.join(args.out_dir, f'profile_b{batch}.txt'))
    for var in runs.values():
        if var.pruner is not None:
            var.pruner.remove()
    return out


def write_profile(runs: dict, x, y, path: str, rows: int = 20) -> None:
    """Operator table (self CPU time) of one step of every variant."""
    from torch.profiler import ProfilerActivity, profile
    parts = []
    for name, var in runs.items():
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            var.step(x, y)
        parts.append(f'== {name} (batch {len(x)})\n' +
                     prof.key_averages().table(
                         sort_by='self_cpu_time_total', row_limit=rows))
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    with open(path, 'w') as f:
        f.write('\n\n'.join(parts) + '\n')
    print(f'operator profile: {path}')


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    base = MODELS.build(classifier_cfg(args.arch, args.img_size,
                                       args.num_classes))
    base.train()
    model_params = sum(p.numel() for p in base.parameters())
    rows = []
    for batch in args.batches:
        rows += measure(batch, args, base)
    columns = ['batch', 'variant', 's_per_step', 'vs_dense', 'vs_dense_min',
               'probe_params_M', 'ckpt_state_MB', 'ckpt_state_vs_model',
               'allreduce_MB', 'probe_autograd_MB']
    headers = ['batch', 'variant', 's / step (median)',
               'step / dense step (medians)', 'step / dense step (minima)',
               'probe params (M)', 'P3B state in ckpt (MB)',
               'state / model size', 'all-reduce per iter (MB)',
               'probe autograd state (MB)']
    table = format_table(rows, columns, headers)
    env = dict(arch=args.arch, model_params_M=model_params / 1e6,
               img_size=args.img_size, num_classes=args.num_classes,
               repeat=args.repeat, threads=torch.get_num_threads(),
               probe_width=args.probe_width,
               probe_fraction=args.probe_fraction, window=args.window,
               interval=args.interval,
               cpu=platform.processor() or platform.machine(),
               torch=torch.__version__)
    print(table)
    print(env)
    write_json(dict(env=env, rows=rows),
               osp.join(args.out_dir, 'probe_cost.json'))
    with open(osp.join(args.out_dir, 'probe_cost.md'), 'w') as f:
        f.write(table + '\n\n' + str(env) + '\n')


if __name__ == '__main__':
    main()
