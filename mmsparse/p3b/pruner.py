"""P3B: Pruning by Block Benefit, the training-time algorithm.

Glandorf & Rosenhahn, "Pruning by Block Benefit: Exploring the Properties of
Vision Transformer Blocks during Domain Adaptation", ICCV 2025 workshops,
https://arxiv.org/abs/2506.23675.

:class:`P3BPruner` is framework-free: a training loop calls
:meth:`P3BPruner.before_iter` before the forward pass and
:meth:`P3BPruner.after_iter` after the optimizer step. It

1. trains probe heads on the (detached) residual stream and accumulates the
   block benefit of every attention / MLP sub-block from ``start`` on;
2. accumulates Taylor scores ``(m * dL/dm) ** 2`` of the gates;
3. every ``interval`` iterations turns the benefits into block keep ratios
   (:func:`~mmsparse.p3b.budget.transform_benefit`,
   :func:`~mmsparse.p3b.budget.solve_keep_ratios`, linear ramp to
   ``sparse``) and rebuilds all masks from scratch: inside each sub-block
   the gate elements are ranked (normalised rank x gate scale) and the
   least important are masked with a soft mask whose temperature anneals to
   0 at ``final``;
4. at ``final`` makes the masks hard; :meth:`P3BPruner.slim_blocks` then
   cuts the model into :class:`~mmsparse.p3b.slim.SlimBlock` s.
"""
import itertools
import warnings
from typing import Callable, Dict, List, Optional, Union

import torch
import torch.nn as nn

from .adapter import vit_view
from .budget import (choose_num_pruned, ramp_keep_ratios, soft_mask,
                     solve_keep_ratios, temperature, transform_benefit)
from .gates import (ATTN_GATES, GATE_NAMES, MLP_GATES, GatedViT,
                    dense_sub_block_params, sub_block_params)
from .probes import PROBE_DESIGNS, build_probes
from .slim import SlimBlock, slice_block

#: Gate scales of the reference implementation.
DEFAULT_GATE_SCALES = dict(attn_out=1.5, mlp_hidden=0.75, mlp_out=1.5)
BLOCK_BUDGETS = ('benefit', 'benefit-first', 'uniform')
ELEMENT_SCORES = ('taylor', 'magnitude')

AllReduce = Callable[[torch.Tensor, str], None]


def _no_reduce(tensor: torch.Tensor, op: str = 'sum') -> None:
    return None


def _round_counts(block, is_mlp: bool, counts: List[int], sizes: List[int],
                  multiple: int, goal: float) -> List[int]:
    """Kept count per gate rounded (down or up) to ``multiple``; of the
    2 ** 3 roundings the one whose parameter count is closest to ``goal``.
    Empty gates stay empty, kept gates keep at least ``multiple``."""
    options = []
    for count, size in zip(counts, sizes):
        if count == 0:
            options.append([0])
            continue
        low = max(multiple, count // multiple * multiple)
        high = -(-count // multiple) * multiple
        options.append(sorted({min(low, size), min(high, size)}))
    best = min(itertools.product(*options), key=lambda c: abs(
        float(sub_block_params(block, is_mlp, *c)) - goal))
    return list(best)


def in_probe_window(step: int, start: int, interval: int, final: int,
                    window: Optional[int]) -> bool:
    """Whether probes with a ``window`` (None = always) train at ``step``:
    the last ``window`` steps before each mask update (at
    ``start + k * interval - 1``) and before the finalize step
    (``final - 1``)."""
    if step >= final:
        return False
    if window is None:
        return True
    if step < start:
        event = start + interval - 1
    else:
        event = start + ((step - start) // interval + 1) * interval - 1
    return min(event, final - 1) - step < window


def check_schedule(start: int, sparse: int, final: int, interval: int,
                   unit: str = 'iterations', owner: str = 'P3B') -> None:
    """Validate the pruning schedule (raises ``ValueError`` starting with
    ``owner``)."""
    for name, value in (('prune_start', start), ('prune_sparse', sparse),
                        ('prune_finalize', final)):
        if not isinstance(value, int) or value < 0:
            raise ValueError(f'{owner}: {name} must be an int >= 0, got '
                             f'{value!r}')
    if not start <= sparse <= final:
        raise ValueError(
            f'{owner}: needs prune_start <= prune_sparse <= prune_finalize, '
            f'got {start}, {sparse}, {final} ({unit}); the prune start must '
            'not come after the finalize step')
    if final == start:
        raise ValueError(f'{owner}: prune_finalize ({final}) must come after '
                         f'prune_start ({start}) ({unit})')
    if not isinstance(interval, int) or interval < 1:
        raise ValueError(f'{owner}: update_interval must be an int >= 1, got '
                         f'{interval!r}')


def check_keep_ratio(keep_ratio, owner: str = 'P3B') -> None:
    """Validate ``keep_ratio`` in (0, 1] (raises ``ValueError`` starting
    with ``owner``)."""
    if isinstance(keep_ratio, bool) or not isinstance(
            keep_ratio, (int, float)) or not 0 < keep_ratio <= 1:
        raise ValueError(f'{owner}: keep_ratio must be a number in (0, 1], '
                         f'got {keep_ratio!r}')


def check_probe_args(probe: str, probe_width: int, probe_fraction: float,
                     probe_window: Optional[int], interval: int,
                     owner: str = 'P3B') -> None:
    """Validate the probe design settings (raises ``ValueError``)."""
    if probe not in PROBE_DESIGNS:
        raise ValueError(f'{owner}: probe must be one of {PROBE_DESIGNS}, '
                         f'got {probe!r}')
    if not isinstance(probe_width, int) or probe_width < 1:
        raise ValueError(f'{owner}: probe_width must be an int >= 1, got '
                         f'{probe_width!r}')
    if isinstance(probe_fraction, bool) or not isinstance(
            probe_fraction, (int, float)) or not 0 < probe_fraction <= 1:
        raise ValueError(f'{owner}: probe_fraction must be in (0, 1], got '
                         f'{probe_fraction!r}')
    if probe_window is not None and (
            not isinstance(probe_window, int) or
            not 1 <= probe_window <= interval):
        raise ValueError(f'{owner}: probe_window must be None or an int in '
                         f'[1, update_interval={interval}], got '
                         f'{probe_window!r}')


class P3BPruner(nn.Module):
    """Gates, probes, statistics and mask updates of P3B on one ViT.

    Statistics are accumulated on the model's device (no host syncs per
    iteration). In a multi-process run the probe gradients, the gate
    gradients and the per-iteration block benefits go through one
    all-reduce (mean) per iteration, so probes, statistics and decisions are
    identical on every rank and a checkpoint written by one rank holds the
    statistics of all.

    Args:
        model (nn.Module): The task model or its ViT backbone (see
            :func:`~mmsparse.p3b.adapter.vit_view`).
        num_classes (int): Classes of the probe heads.
        keep_ratio (float): Fraction of parameters to keep, in (0, 1].
        start (int): Iteration pruning starts (statistics accumulate from
            here).
        sparse (int): Iteration the goal keep ratio is reached.
        final (int): Iteration masks are hard and the model is sliced.
        interval (int): Iterations between mask updates.
        non_block_params (int): Parameters outside the blocks that count
            toward the budget (0 = budget over block parameters only).
            Defaults to 0.
        gate_scales (dict, optional): Factor on the normalised rank per gate
            name; missing names use 1. None = reference
            (:data:`DEFAULT_GATE_SCALES`). Defaults to None.
        ema_momentum (float): Weight of the new block importance.
            Defaults to 0.2.
        tau_max (float): Soft-mask temperature until ``sparse``.
            Defaults to 0.1.
        tau_min (float): Temperature reached at ``final`` (the final masks
            are always hard). Defaults to 0.
        alpha (float): Weight of the cls importance (1 - alpha: patch).
            Defaults to 0.5.
        benefit_scale (float): Upper end of the smooth benefit clamp.
            Defaults to 10.
        probe_lr (float): AdamW learning rate of the probes.
            Defaults to 5e-4.
        probe_weight_decay (float): AdamW weight decay of the probes.
            Defaults to 0.05.
        probe_convs (int, optional): Conv stages of each patch probe; None =
            2 (reference) / 1 (cheap). Defaults to None.
        probe (str): Probe design: 'reference' (the paper's: per sub-block
            a linear cls head and a 2 x Conv3x3 D->D patch head, applied to
            its input and output) or 'cheap'
            (:class:`~mmsparse.p3b.probes.CheapProbeBank`). Defaults to
            'reference'.
        probe_width (int): Width of the cheap probes. Defaults to 32.
        probe_fraction (float): Fraction of each batch the probes see (a
            random subset). Defaults to 1.
        probe_window (int, optional): Train the probes (and measure the
            benefit) only in the last ``probe_window`` iterations before
            each mask update; None = every iteration. Defaults to None.
        block_budget (str): 'benefit' (P3B), 'benefit-first' (ablation:
            the budget of the first update is kept at every later update,
            so no block gets parameters back; benefits are still measured
            and logged) or 'uniform' (same keep ratio for every block; no
            probes). Defaults to 'benefit'.
        element_score (str): 'taylor' (P3B) or 'magnitude' (weight norms)
            for the ranking inside a block. Defaults to 'taylor'.
        seed (int): Seed of the probe initialisation and the batch subsets
            (identical on every rank). Defaults to 0.
        width_multiple (int): Round every kept width (input, head, hidden,
            output dims) of the final hard masks to a multiple of this, for
            fast GEMM shapes; 1 = no rounding (the reference). Defaults to 1.
        all_reduce (callable, optional): ``all_reduce(tensor, op)`` in place
            with ``op`` in {'sum', 'mean'}; None for a single process.
            Defaults to None.
        warn (callable, optional): ``warn(message)`` for problems that do
            not stop the run (e.g. iterations whose features were missing);
            None = :func:`warnings.warn`. Defaults to None.
    """

    def __init__(self,
                 model: nn.Module,
                 num_classes: int,
                 keep_ratio: float,
                 start: int,
                 sparse: int,
                 final: int,
                 interval: int,
                 non_block_params: int = 0,
                 gate_scales: Optional[Dict[str, float]] = None,
                 ema_momentum: float = 0.2,
                 tau_max: float = 0.1,
                 tau_min: float = 0.0,
                 alpha: float = 0.5,
                 benefit_scale: float = 10.0,
                 probe_lr: float = 5e-4,
                 probe_weight_decay: float = 0.05,
                 probe_convs: Optional[int] = None,
                 probe: str = 'reference',
                 probe_width: int = 32,
                 probe_fraction: float = 1.0,
                 probe_window: Optional[int] = None,
                 block_budget: str = 'benefit',
                 element_score: str = 'taylor',
                 seed: int = 0,
                 width_multiple: int = 1,
                 all_reduce: Optional[AllReduce] = None,
                 warn: Optional[Callable[[str], None]] = None) -> None:
        super().__init__()
        owner = type(self).__name__
        check_keep_ratio(keep_ratio, owner)
        check_schedule(start, sparse, final, interval, owner=owner)
        check_probe_args(probe, probe_width, probe_fraction, probe_window,
                         interval, owner)
        if block_budget not in BLOCK_BUDGETS:
            raise ValueError(f'{owner}: block_budget must be one of '
                             f'{BLOCK_BUDGETS}, got {block_budget!r}')
        if element_score not in ELEMENT_SCORES:
            raise ValueError(f'{owner}: element_score must be one of '
                             f'{ELEMENT_SCORES}, got {element_score!r}')
        scales = dict(DEFAULT_GATE_SCALES if gate_scales is None else
                      gate_scales)
        unknown = set(scales) - set(GATE_NAMES)
        if unknown or any(v <= 0 for v in scales.values()):
            raise ValueError(f'{owner}: gate_scales keys must be in '
                             f'{GATE_NAMES} with positive values, got '
                             f'{scales}')
        for name, value, low, high in (('ema_momentum', ema_momentum, 0, 1),
                                       ('alpha', alpha, 0, 1)):
            if not low <= value <= high:
                raise ValueError(f'{owner}: {name} must be in [{low}, '
                                 f'{high}], got {value}')
        if not 0 <= tau_min <= tau_max:
            raise ValueError(f'{owner}: need 0 <= tau_min <= tau_max, got '
                             f'{tau_min}, {tau_max}')
        if not isinstance(width_multiple, int) or width_multiple < 1:
            raise ValueError(f'{owner}: width_multiple must be an int >= 1, '
                             f'got {width_multiple!r}')
        self.width_multiple = width_multiple
        self.keep_ratio = float(keep_ratio)
        self.start, self.sparse, self.final = start, sparse, final
        self.interval = interval
        self.gate_scales = {n: float(scales.get(n, 1.0)) for n in GATE_NAMES}
        self.ema_momentum, self.alpha = ema_momentum, alpha
        self.tau_max, self.tau_min = tau_max, tau_min
        self.benefit_scale = benefit_scale
        self.block_budget, self.element_score = block_budget, element_score
        self.probe_design = probe
        self.probe_fraction = float(probe_fraction)
        self.probe_window = probe_window
        self.all_reduce = all_reduce or _no_reduce
        self.warn = warn or (lambda msg: warnings.warn(msg, stacklevel=3))

        try:
            self.view = vit_view(model)
        except TypeError as err:
            raise TypeError(f'{owner}: {err}') from err
        self.gated = GatedViT(self.view)
        num = self.gated.num_sub_blocks
        self.dense_params = dense_sub_block_params(self.view)
        self.non_block_params = float(non_block_params)
        # Raises early when the budget cannot be met.
        try:
            solve_keep_ratios(torch.ones(num), self.dense_params, keep_ratio,
                              self.non_block_params)
        except ValueError as err:
            raise ValueError(f'{owner}: {err}') from err

        self.device = self.view.blocks[0].qkv.weight.device
        self.probes: Optional[nn.Module] = None
        self.probe_optim = None
        self._subset_gen = None
        if block_budget != 'uniform':
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                self.probes = build_probes(
                    probe, num, self.view.embed_dims, num_classes,
                    self.view.num_extra_tokens, probe_convs,
                    probe_width).to(self.device)
            self.probe_optim = torch.optim.AdamW(
                self.probes.parameters(), lr=probe_lr,
                weight_decay=probe_weight_decay)
            self._subset_gen = torch.Generator().manual_seed(seed + 1)

        self.finalized = False
        self.num_updates = 0
        self.missing_features = 0  # probe steps skipped since the update
        self._reset_stats()
        self.last_stats = None
        self.ema = None  # (2, S): smoothed cls and patch importance
        self.goal_keep = torch.ones(num, dtype=torch.float64)
        self.history: List[dict] = []

    # ------------------------------------------------------------ state
    def _reset_stats(self) -> None:
        num, dev = self.gated.num_sub_blocks, self.device
        # counts are device tensors: skipped (non-finite) steps add 0
        self.benefit_sum = torch.zeros(2, num, dtype=torch.float64,
                                       device=dev)
        self.benefit_count = torch.zeros((), dtype=torch.float64, device=dev)
        self.taylor = {k: torch.zeros(g.numel(), dtype=torch.float64,
                                      device=dev)
                       for k, g in self.gated.gates.items()}
        self.taylor_count = torch.zeros((), dtype=torch.float64, device=dev)

    def _stats(self, device=None) -> dict:
        def copy(t):
            return t.detach().clone() if device is None else \
                t.detach().to(device, copy=True)
        return dict(benefit_sum=copy(self.benefit_sum),
                    benefit_count=copy(self.benefit_count),
                    taylor={k: copy(v) for k, v in self.taylor.items()},
                    taylor_count=copy(self.taylor_count))

    def _load_stats(self, stats: dict) -> None:
        def load(v):
            return torch.as_tensor(v, dtype=torch.float64).to(
                self.device, copy=True)
        self.benefit_sum = load(stats['benefit_sum'])
        self.benefit_count = load(stats['benefit_count'])
        self.taylor = {k: load(v) for k, v in stats['taylor'].items()}
        self.taylor_count = load(stats['taylor_count'])

    def _schedule(self) -> tuple:
        return self.start, self.sparse, self.final, self.interval

    def get_state(self) -> dict:
        """Everything a resumed run needs, as a checkpoint-friendly dict
        (CPU tensors)."""
        cpu = torch.device('cpu')
        state = dict(
            schedule=list(self._schedule()),
            keep_ratio=self.keep_ratio,
            probe=self.probe_design,
            block_budget=self.block_budget,
            gates={k: g.detach().cpu().clone()
                   for k, g in self.gated.gates.items()},
            stats=self._stats(cpu),
            last_stats=None if self.last_stats is None else {
                k: ({n: t.cpu() for n, t in v.items()} if isinstance(
                    v, dict) else v.cpu())
                for k, v in self.last_stats.items()},
            ema=None if self.ema is None else self.ema.clone(),
            goal_keep=self.goal_keep.clone(),
            finalized=self.finalized,
            num_updates=self.num_updates,
            history=list(self.history))
        if self.probes is not None:
            state['probes'] = self.probes.state_dict()
            state['probe_optim'] = self.probe_optim.state_dict()
            state['subset_gen'] = self._subset_gen.get_state()
        return state

    def check_state(self, state: dict, owner: Optional[str] = None) -> None:
        """Raise ``ValueError`` if ``state`` comes from a run with another
        keep ratio, schedule, probe design, block budget or model."""
        owner = owner or type(self).__name__
        hint = ('; to start a new pruning run from its weights, load it '
                'with load_from and resume=False')
        if abs(float(state['keep_ratio']) - self.keep_ratio) > 1e-12:
            raise ValueError(
                f'{owner}: cannot resume: the checkpoint was written with '
                f'keep_ratio={state["keep_ratio"]}, this run has '
                f'keep_ratio={self.keep_ratio}{hint}')
        if tuple(state['schedule']) != self._schedule():
            raise ValueError(
                f'{owner}: cannot resume: the checkpoint was written with '
                'schedule (start, sparse, final, interval) = '
                f'{list(state["schedule"])} iterations, this run has '
                f'{list(self._schedule())}{hint}')
        if state.get('probe', 'reference') != self.probe_design:
            raise ValueError(
                f'{owner}: cannot resume: the checkpoint was written with '
                f'probe={state.get("probe", "reference")!r}, this run has '
                f'probe={self.probe_design!r}{hint}')
        if state.get('block_budget', self.block_budget) != self.block_budget:
            raise ValueError(
                f'{owner}: cannot resume: the checkpoint was written with '
                f'block_budget={state["block_budget"]!r}, this run has '
                f'block_budget={self.block_budget!r}{hint}')
        if set(state['gates']) != set(self.gated.gates):
            raise ValueError(f'{owner}: the checkpoint gates do not match '
                             'the model (different number of blocks?)')

    def set_state(self, state: dict) -> None:
        """Restore :meth:`get_state` (the same model, keep ratio and
        schedule). Gates that were in use are active right away, so the
        model evaluates pruned before any training iteration."""
        self.check_state(state)
        with torch.no_grad():
            for k, g in self.gated.gates.items():
                g.copy_(state['gates'][k])
        self._load_stats(state['stats'])
        last = state['last_stats']
        if last is not None:
            last = dict(last)
            last['taylor'] = {k: torch.as_tensor(v).to(self.device)
                              for k, v in last['taylor'].items()}
            for key in ('benefit_sum', 'benefit_count', 'taylor_count'):
                last[key] = torch.as_tensor(
                    last[key], dtype=torch.float64).to(self.device)
        self.last_stats = last
        self.ema = state['ema']
        self.goal_keep = state['goal_keep'].clone()
        self.finalized = bool(state['finalized'])
        self.num_updates = int(state['num_updates'])
        self.history = list(state['history'])
        self.gated.active = self.finalized or self.num_updates > 0
        if self.finalized:
            self._drop_probes()
        elif self.probes is not None and 'probes' in state:
            self.probes.load_state_dict(state['probes'])
            self.probe_optim.load_state_dict(state['probe_optim'])
            if 'subset_gen' in state:
                self._subset_gen.set_state(state['subset_gen'])

    # ------------------------------------------------------- schedule
    def in_window(self, step: int) -> bool:
        """Whether ``step`` accumulates statistics (start <= step < final)."""
        return (not self.finalized) and self.start <= step < self.final

    def probes_run(self, step: int) -> bool:
        """Whether the probes train at ``step`` (every step until the
        finalize step, or only the last ``probe_window`` steps before each
        mask update)."""
        if self.probes is None or self.finalized:
            return False
        return in_probe_window(step, self.start, self.interval, self.final,
                               self.probe_window)

    def before_iter(self, step: int) -> None:
        """Switch gates, gate gradients and feature capture for ``step``."""
        window = self.in_window(step)
        self.gated.active = window or self.finalized or self.num_updates > 0
        self.gated.set_requires_grad(
            window and self.element_score == 'taylor')
        self.gated.capture = self.probes_run(step)

    def after_iter(self, step: int,
                   targets: Optional[torch.Tensor] = None,
                   grad_scale: Union[None, float, torch.Tensor] = None
                   ) -> Optional[dict]:
        """Probe step, statistics and (maybe) a mask update after ``step``.

        Steps whose gate gradients (after unscaling) or probe losses are
        not finite (e.g. an fp16 overflow step that the optimizer skips)
        add nothing to the statistics.

        Args:
            step (int): The iteration that just finished (0-based).
            targets (Tensor, optional): Class indices (B, ) or soft targets
                (B, C) of the batch; needed for the probes.
            grad_scale (float | Tensor, optional): The loss scale the
                backward pass used (mixed precision); the gate gradients are
                divided by it. None = 1.

        Returns:
            dict | None: The update record when masks were rebuilt (key
            ``finalized`` is True at the final step).
        """
        window = self.in_window(step)
        probe = self.gated.capture and targets is not None
        if probe and any(f is None for f in self.gated.features):
            self.missing_features += 1
            probe = False
        taylor = window and self.element_score == 'taylor'
        self._step_statistics(probe, window, taylor, targets, grad_scale)
        self.gated.features = [None] * len(self.gated.features)
        self.gated.capture = False
        record = None
        if window and (step - self.start + 1) % self.interval == 0 \
                and step + 1 < self.final:
            record = self.update(step)
        if not self.finalized and step + 1 == self.final:
            record = self.finalize(step)
        self.gated.set_requires_grad(False)
        return record

    # ------------------------------------------------ per-step statistics
    def _subset(self, targets: torch.Tensor):
        """Features and targets of a random part of the batch."""
        feats = self.gated.features
        if self.probe_fraction >= 1:
            return feats, targets
        batch = targets.shape[0]
        num = max(1, int(round(self.probe_fraction * batch)))
        idx = torch.randperm(batch, generator=self._subset_gen)[:num]
        idx = idx.to(targets.device)
        return [f.index_select(0, idx) for f in feats], \
            targets.index_select(0, idx)

    def _step_statistics(self, probe: bool, window: bool, taylor: bool,
                         targets, grad_scale) -> None:
        """One probe step and the step's benefits and Taylor scores, with a
        single all-reduce of everything that must agree across ranks."""
        parts, probe_grads, ce_diff = [], [], None
        if probe:
            self.probes.train()
            feats, tgts = self._subset(targets)
            loss, ce = self.probes(feats, tgts, self.gated.patch_hw)
            self.probe_optim.zero_grad(set_to_none=False)
            loss.backward()
            probe_grads = [p.grad for p in self.probes.parameters()
                           if p.grad is not None]
            parts += [g.flatten() for g in probe_grads]
            if window:
                diff = torch.stack([ce[0] - ce[1], ce[2] - ce[3]]).double()
                ok = torch.isfinite(diff).all()
                ce_diff = torch.where(ok, diff, torch.zeros_like(diff))
                parts += [ce_diff.flatten().to(parts[0]),
                          ok.to(parts[0]).view(1)]
        gate_keys = []
        if taylor:
            gate_keys = [k for k, g in self.gated.gates.items()
                         if g.grad is not None]
            parts += [self.gated.gates[k].grad.flatten() for k in gate_keys]
        if not parts:
            return
        flat = torch.cat([p.float() for p in parts])
        # mean over ranks = the gradient of the global batch, as in DDP; the
        # benefit sums and counts are means too (their ratio is unchanged)
        self.all_reduce(flat, 'mean')
        offset = 0
        if probe_grads:
            size = sum(g.numel() for g in probe_grads)
            grads = flat[:size]
            grads = torch.where(torch.isfinite(grads).all(), grads,
                                torch.zeros_like(grads))
            for g in probe_grads:
                g.copy_(grads[offset:offset + g.numel()].view_as(g))
                offset += g.numel()
            self.probe_optim.step()
        if ce_diff is not None:
            n = ce_diff.numel()
            self.benefit_sum += flat[offset:offset + n].view_as(
                ce_diff).double()
            self.benefit_count += flat[offset + n].double()
            offset += n + 1
        if gate_keys:
            self._accumulate_taylor(gate_keys, flat[offset:], grad_scale)

    def _drop_probes(self) -> None:
        self.probes = None
        self.probe_optim = None
        self.gated.capture = False

    # ---------------------------------------------------------- taylor
    def _accumulate_taylor(self, keys: List[str], grads: torch.Tensor,
                           grad_scale) -> None:
        grads = grads.double()
        if grad_scale is not None:
            grads = grads / torch.as_tensor(grad_scale, dtype=torch.float64,
                                            device=grads.device)
        ok = torch.isfinite(grads).all()
        offset = 0
        for k in keys:
            g = self.gated.gates[k]
            n = g.numel()
            score = (g.detach().double() * grads[offset:offset + n]) ** 2
            self.taylor[k] += torch.where(ok, score, torch.zeros_like(score))
            offset += n
            g.grad = None
        self.taylor_count += ok.double()

    # ---------------------------------------------------------- budget
    def kept_params(self) -> torch.Tensor:
        """Parameters each sub-block keeps under the current hard masks."""
        return torch.tensor([
            self.gated.sub_block_kept_params(j)
            for j in range(self.gated.num_sub_blocks)
        ], dtype=torch.float64)

    def global_keep_ratio(self) -> float:
        """Kept / dense parameters of the model (non-block ones included)."""
        nb = self.non_block_params
        return float((self.kept_params().sum() + nb) /
                     (self.dense_params.sum() + nb))

    def _block_importance(self, kept: torch.Tensor):
        num = self.gated.num_sub_blocks
        if self.block_budget == 'uniform':
            return torch.ones(num, dtype=torch.float64), None
        count = float(self.benefit_count)
        if count == 0:
            mean = torch.zeros(2, num, dtype=torch.float64)
        else:
            mean = self.benefit_sum.cpu() / count
        prev = self.ema
        new = torch.stack([
            transform_benefit(mean[t], kept, self.benefit_scale,
                              None if prev is None else prev[t],
                              self.ema_momentum) for t in range(2)
        ])
        self.ema = new
        imp = self.alpha * new[0] + (1 - self.alpha) * new[1]
        return imp, mean

    # --------------------------------------------------------- elements
    def _magnitude_scores(self, sub_idx: int) -> List[torch.Tensor]:
        b = self.view.blocks[sub_idx // 2]
        with torch.no_grad():
            if sub_idx % 2 == 0:
                w_qkv = b.qkv.weight.view(3, b.num_heads, b.head_dims, -1)
                w_proj = b.proj.weight.view(-1, b.num_heads, b.head_dims)
                return [
                    b.qkv.weight.norm(dim=0),
                    (w_qkv.pow(2).sum((0, 1, 3)) +
                     w_proj.pow(2).sum((0, 1))).sqrt(),
                    b.proj.weight.norm(dim=1)
                ]
            return [
                b.fc1.weight.norm(dim=0),
                (b.fc1.weight.pow(2).sum(1) +
                 b.fc2.weight.pow(2).sum(0)).sqrt(),
                b.fc2.weight.norm(dim=1)
            ]

    def _element_scores(self, sub_idx: int) -> List[torch.Tensor]:
        if self.element_score == 'magnitude':
            return [s.double().cpu() for s in self._magnitude_scores(sub_idx)]
        names = MLP_GATES if sub_idx % 2 else ATTN_GATES
        count = float(self.taylor_count.clamp(min=1.0))
        return [self.taylor[self.gated.key(sub_idx // 2, n)].cpu() / count
                for n in names]

    def _rebuild_masks(self, sub_idx: int, keep: float, tau: float,
                       multiple: int = 1, carry: float = 0.0) -> float:
        """New masks of one sub-block from its current scores.

        Args:
            sub_idx (int): The sub-block.
            keep (float): Its keep ratio (of its dense parameters).
            tau (float): Soft-mask temperature (0 = hard).
            multiple (int): With hard masks, round every gate's kept count
                to a multiple of this (the rounding closest to the block
                budget). Defaults to 1.
            carry (float): Parameters added to the rounding goal (the
                rounding error of the sub-blocks before, so that the total
                stays on budget). Defaults to 0.

        Returns:
            float: Goal minus the parameters kept (the rounding error).
        """
        block = self.view.blocks[sub_idx // 2]
        is_mlp = bool(sub_idx % 2)
        names = MLP_GATES if is_mlp else ATTN_GATES
        gates = self.gated.sub_block_gates(sub_idx)
        ranks, ids = [], []
        for gid, (name, score) in enumerate(
                zip(names, self._element_scores(sub_idx))):
            order = torch.sort(score, stable=True).indices
            rank = torch.empty_like(score)
            rank[order] = torch.arange(1, len(score) + 1, dtype=score.dtype)
            ranks.append(self.gate_scales[name] * rank / len(score))
            ids.append(torch.full((len(score), ), gid))
        imp, ids = torch.cat(ranks), torch.cat(ids)
        order = torch.sort(imp, stable=True).indices
        pruned = torch.zeros(len(imp) + 1, 3, dtype=torch.float64)
        pruned[1:] = torch.nn.functional.one_hot(ids[order], 3).double() \
            .cumsum(0)
        sizes = torch.tensor([g.numel() for g in gates], dtype=torch.float64)
        kept = sizes - pruned
        params = sub_block_params(block, is_mlp, kept[:, 0], kept[:, 1],
                                  kept[:, 2])
        goal = keep * float(self.dense_params[sub_idx])
        k, _ = choose_num_pruned(params, goal)
        values = torch.empty(len(imp), dtype=torch.float64)
        values[order] = soft_mask(len(imp), k, tau)
        values = list(values.split([g.numel() for g in gates]))
        counts = kept[k].long().tolist()
        if tau <= 0 and multiple > 1:
            counts = _round_counts(block, is_mlp, counts,
                                   sizes.long().tolist(), multiple,
                                   goal + carry)
            for gid, count in enumerate(counts):
                top = torch.sort(ranks[gid], descending=True,
                                 stable=True).indices[:count]
                values[gid] = torch.zeros_like(values[gid])
                values[gid][top] = 1.0
        with torch.no_grad():
            for g, v in zip(gates, values):
                g.copy_(v.to(g))
        return goal + carry - float(sub_block_params(block, is_mlp, *counts))

    # ---------------------------------------------------------- update
    def _report_missing(self, step: int) -> None:
        """Warn (with the count) about probe steps skipped since the last
        update because block features were not captured."""
        if self.missing_features:
            self.warn(
                f'{type(self).__name__}: {self.missing_features} probe '
                f'step(s) before the update at iteration {step + 1} had no '
                'features for some blocks (did the forward pass skip '
                'blocks?); their block benefit was not measured')
        if self.probes is not None and float(self.benefit_count) == 0:
            self.warn(
                f'{type(self).__name__}: no block benefit was measured '
                f'before the update at iteration {step + 1}; the block '
                'budget is uniform this time')
        self.missing_features = 0

    def update(self, step: int, final: bool = False) -> dict:
        """Recompute block budgets and rebuild every mask from scratch.

        Args:
            step (int): Current iteration (for the ramp and temperature).
            final (bool): Hard masks at the full goal keep ratio.
                Defaults to False.

        Returns:
            dict: The record appended to ``self.history``.
        """
        self._report_missing(step)
        kept_before = self.kept_params()
        importance, benefit = self._block_importance(kept_before)
        if self.block_budget == 'benefit-first' and self.history:
            # no reactivation: every later solve sees the first importance
            importance = torch.tensor(self.history[0]['importance'],
                                      dtype=torch.float64)
        self.goal_keep = solve_keep_ratios(importance, self.dense_params,
                                           self.keep_ratio,
                                           self.non_block_params)
        if final:
            keep, tau = self.goal_keep, 0.0
        else:
            keep = ramp_keep_ratios(self.goal_keep, step, self.start,
                                    self.sparse)
            tau = temperature(step, self.sparse, self.final, self.tau_max,
                              self.tau_min)
        carry = 0.0
        for j in range(self.gated.num_sub_blocks):
            carry = self._rebuild_masks(j, float(keep[j]), tau,
                                        self.width_multiple if final else 1,
                                        carry if final else 0.0)
        self.gated.active = True
        self.num_updates += 1
        kept = self.kept_params()
        record = dict(
            step=int(step),
            tau=float(tau),
            global_keep=self.global_keep_ratio(),
            target_keep=[float(v) for v in keep],
            goal_keep=[float(v) for v in self.goal_keep],
            block_keep=[float(v) for v in kept / self.dense_params],
            kept_params=[float(v) for v in kept],
            importance=[float(v) for v in importance],
            benefit_cls=None if benefit is None else
            [float(v) for v in benefit[0]],
            benefit_patch=None if benefit is None else
            [float(v) for v in benefit[1]],
            finalized=bool(final))
        self.history.append(record)
        self.last_stats = self._stats()
        self._reset_stats()
        return record

    def finalize(self, step: int) -> dict:
        """Last update with hard masks; drops the probes.

        As in the reference, the statistics since the last update are merged
        with those of the interval before.
        """
        if self.last_stats is not None:
            last = self.last_stats
            self.benefit_sum += last['benefit_sum']
            self.benefit_count += last['benefit_count']
            for k in self.taylor:
                self.taylor[k] += last['taylor'][k]
            self.taylor_count += last['taylor_count']
        record = self.update(step, final=True)
        self.finalized = True
        self.gated.set_requires_grad(False)
        self._drop_probes()
        self.last_stats = None
        return record

    # ----------------------------------------------------------- slim
    def block_gates(self, block_idx: int) -> Dict[str, torch.Tensor]:
        """The six gate tensors of encoder block ``block_idx``."""
        return {n: self.gated.gate(block_idx, n) for n in GATE_NAMES}

    def slim_blocks(self) -> List[SlimBlock]:
        """Slim copies of all blocks under the current gates."""
        return [slice_block(b, self.block_gates(i))
                for i, b in enumerate(self.view.blocks)]

    def slim_arch(self) -> List[Dict[str, int]]:
        """Kept sizes per block (the ``slim_arch`` of a slim backbone)."""
        return [{n: int((g.detach() >= 0.5).sum()) for n, g in
                 self.block_gates(i).items()}
                for i in range(len(self.view.blocks))]

    def slim_state_dict(self, model: nn.Module) -> Dict[str, torch.Tensor]:
        """State dict of ``model`` with its blocks replaced by the slim ones.

        Keys outside the block container are unchanged, so the result loads
        strictly into the same model with a slim backbone whose
        ``slim_arch`` is :meth:`slim_arch`.

        Args:
            model (nn.Module): The task model holding the pruned backbone.

        Returns:
            dict: CPU tensors by key.
        """
        container = getattr(self.view.backbone, self.view.container)
        prefix = next(name for name, mod in model.named_modules()
                      if mod is container)
        prefix = prefix + '.' if prefix else ''
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()
                 if not k.startswith(prefix)}
        for i, block in enumerate(self.slim_blocks()):
            for k, v in block.state_dict().items():
                state[f'{prefix}{i}.{k}'] = v.detach().cpu()
        return state

    def remove(self) -> None:
        """Take the hooks off the task model."""
        self.gated.remove()


def count_params(module: nn.Module) -> int:
    """Number of (unique) parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())


def non_block_params(model: nn.Module) -> int:
    """Parameters of ``model`` outside its ViT's prunable sub-blocks (patch
    embedding, tokens, final norm, head, layer scales)."""
    return int(count_params(model) -
               dense_sub_block_params(vit_view(model)).sum())


__all__ = [
    'P3BPruner', 'check_keep_ratio', 'check_schedule', 'count_params',
    'non_block_params', 'DEFAULT_GATE_SCALES', 'BLOCK_BUDGETS',
    'ELEMENT_SCORES'
]
