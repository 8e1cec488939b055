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

The pruner ties the steps together; each lives in its own module:
:mod:`~mmsparse.p3b.schedule` (when), :mod:`~mmsparse.p3b.statistics`
(benefit and Taylor sums), :mod:`~mmsparse.p3b.budget` (block keep ratios),
:mod:`~mmsparse.p3b.elements` (masks inside a block),
:mod:`~mmsparse.p3b.history` (update records), :mod:`~mmsparse.p3b.state`
(checkpoint state), :mod:`~mmsparse.p3b.export` (the slim model) and
:mod:`~mmsparse.p3b.checks` (argument checks).
"""
import warnings
from typing import Callable, Dict, List, Optional, Union

import torch
import torch.nn as nn

from .adapter import vit_view
from .budget import (ramp_keep_ratios, solve_keep_ratios, temperature,
                     transform_benefit)
from .checks import (check_ablation_args, check_keep_ratio, check_probe_args,
                     check_width_multiple)
from .elements import magnitude_scores, sub_block_masks
from .export import block_gates, slim_arch, slim_blocks, slim_state_dict
from .gates import (ATTN_GATES, GATE_NAMES, MLP_GATES, GatedViT,
                    dense_sub_block_params)
from .history import update_record
from .probes import build_probes
from .schedule import check_schedule, in_probe_window, is_update_step
from .slim import SlimBlock
from .state import check_state, load_state, pruner_state
from .statistics import (add_stats, add_taylor, copy_stats, load_stats,
                         zero_stats)

#: Gate scales of the reference implementation.
DEFAULT_GATE_SCALES = dict(attn_out=1.5, mlp_hidden=0.75, mlp_out=1.5)

AllReduce = Callable[[torch.Tensor, str], None]


def _no_reduce(tensor: torch.Tensor, op: str = 'sum') -> None:
    return None


def check_pruner_settings(owner: str, interval: int,
                          gate_scales: Optional[Dict[str, float]],
                          ema_momentum: float, tau_max: float, tau_min: float,
                          alpha: float, probe: str, probe_width: int,
                          probe_fraction: float, probe_window: Optional[int],
                          block_budget: str, element_score: str,
                          width_multiple: int, **others) -> Dict[str, float]:
    """Check the settings of :class:`P3BPruner` (raises ``ValueError``
    starting with ``owner``); a wrapper calls it before the model exists.

    Args:
        owner (str): The class that was given the settings.
        interval (int): Iterations between mask updates (bounds
            ``probe_window``).
        **others: The pruner's other settings (not checked here).

    Returns:
        dict: The gate scales in use (the reference's when None).
    """
    check_probe_args(probe, probe_width, probe_fraction, probe_window,
                     interval, owner)
    check_ablation_args(block_budget, element_score, owner)
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
    check_width_multiple(width_multiple, owner)
    return scales


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
            output dims) of the final hard masks to a multiple of this: odd
            GEMM sizes run at a fraction of the speed on CPU (MKL) and miss
            tensor-core shapes on GPU. 1 = no rounding (the reference code).
            Defaults to 8.
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
                 width_multiple: int = 8,
                 all_reduce: Optional[AllReduce] = None,
                 warn: Optional[Callable[[str], None]] = None) -> None:
        super().__init__()
        owner = type(self).__name__
        check_keep_ratio(keep_ratio, owner)
        check_schedule(start, sparse, final, interval, owner=owner)
        scales = check_pruner_settings(
            owner, interval, gate_scales=gate_scales,
            ema_momentum=ema_momentum, tau_max=tau_max, tau_min=tau_min,
            alpha=alpha, probe=probe, probe_width=probe_width,
            probe_fraction=probe_fraction, probe_window=probe_window,
            block_budget=block_budget, element_score=element_score,
            width_multiple=width_multiple)
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
        self.subset_gen = None
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
            self.subset_gen = torch.Generator().manual_seed(seed + 1)

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
        load_stats(self, zero_stats(self.gated.num_sub_blocks,
                                    self.gated.gates, self.device))

    def schedule(self) -> tuple:
        """(start, sparse, final, interval) in iterations."""
        return self.start, self.sparse, self.final, self.interval

    def get_state(self) -> dict:
        """Everything a resumed run needs, as a checkpoint-friendly dict
        (CPU tensors); see :mod:`mmsparse.p3b.state`."""
        return pruner_state(self)

    def check_state(self, state: dict, owner: Optional[str] = None) -> None:
        """Raise ``ValueError`` if ``state`` comes from a run with another
        keep ratio, schedule, probe design, block budget or model."""
        check_state(self, state, owner or type(self).__name__)

    def set_state(self, state: dict) -> None:
        """Restore :meth:`get_state` (the same model, keep ratio and
        schedule). Gates that were in use are active right away, so the
        model evaluates pruned before any training iteration."""
        load_state(self, state)

    def drop_probes(self) -> None:
        """Free the probes and their optimizer (after the finalize step)."""
        self.probes = None
        self.probe_optim = None
        self.gated.capture = False

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
        if window and is_update_step(step, self.start, self.interval,
                                     self.final):
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
        idx = torch.randperm(batch, generator=self.subset_gen)[:num]
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
            self.taylor_count += add_taylor(self.taylor, self.gated.gates,
                                            gate_keys, flat[offset:],
                                            grad_scale)

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
    def _element_scores(self, sub_idx: int) -> List[torch.Tensor]:
        if self.element_score == 'magnitude':
            return [s.double().cpu() for s in magnitude_scores(
                self.view.blocks[sub_idx // 2], bool(sub_idx % 2))]
        names = MLP_GATES if sub_idx % 2 else ATTN_GATES
        count = float(self.taylor_count.clamp(min=1.0))
        return [self.taylor[self.gated.key(sub_idx // 2, n)].cpu() / count
                for n in names]

    def _rebuild_masks(self, sub_idx: int, keep: float, tau: float,
                       multiple: int = 1, carry: float = 0.0) -> float:
        """New masks of one sub-block from its current scores (see
        :func:`~mmsparse.p3b.elements.sub_block_masks`).

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
        values, error = sub_block_masks(
            self.view.blocks[sub_idx // 2], bool(sub_idx % 2),
            self._element_scores(sub_idx), self.gate_scales,
            keep * float(self.dense_params[sub_idx]), tau, multiple, carry)
        with torch.no_grad():
            for g, v in zip(self.gated.sub_block_gates(sub_idx), values):
                g.copy_(v.to(g))
        return error

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
            dict: The record appended to ``self.history`` (see
            :mod:`mmsparse.p3b.history`).
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
        record = update_record(step, tau, self.global_keep_ratio(), keep,
                               self.goal_keep, self.kept_params(),
                               self.dense_params, importance, benefit, final)
        self.history.append(record)
        self.last_stats = copy_stats(self)
        self._reset_stats()
        return record

    def finalize(self, step: int) -> dict:
        """Last update with hard masks; drops the probes.

        As in the reference, the statistics since the last update are merged
        with those of the interval before.
        """
        if self.last_stats is not None:
            add_stats(self, self.last_stats)
        record = self.update(step, final=True)
        self.finalized = True
        self.gated.set_requires_grad(False)
        self.drop_probes()
        self.last_stats = None
        return record

    # ----------------------------------------------------------- slim
    def block_gates(self, block_idx: int) -> Dict[str, torch.Tensor]:
        """The six gate tensors of encoder block ``block_idx``."""
        return block_gates(self.gated, block_idx)

    def slim_blocks(self) -> List[SlimBlock]:
        """Slim copies of all blocks under the current gates."""
        return slim_blocks(self.view, self.gated)

    def slim_arch(self) -> List[Dict[str, int]]:
        """Kept sizes per block (the ``slim_arch`` of a slim backbone)."""
        return slim_arch(self.view, self.gated)

    def slim_state_dict(self, model: nn.Module) -> Dict[str, torch.Tensor]:
        """State dict of ``model`` (the task model holding the pruned
        backbone) with its blocks replaced by the slim ones (CPU tensors;
        see :func:`mmsparse.p3b.export.slim_state_dict`)."""
        return slim_state_dict(self.view, self.gated, model)

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
    'P3BPruner', 'count_params', 'non_block_params', 'DEFAULT_GATE_SCALES'
]
