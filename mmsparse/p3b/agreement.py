"""Do cheaper probes give P3B the same budgets? Shadow probes in one run.

:class:`ShadowP3BPruner` is a :class:`~mmsparse.p3b.pruner.P3BPruner` (the
reference probes drive the pruning) that also trains other probe designs
(:class:`ShadowProbes`) on exactly the same features and targets, each with
its own block-benefit sums and EMA. At every mask update each shadow turns
its benefits into block keep ratios the way the pruner does (same kept
parameters, same solve), and the record holds the differences to the
pruner's keep ratios and the Spearman rank correlation of the benefits.
Same run, same data: only the probes differ.
"""
from typing import Dict, List, Optional

import torch

from .budget import solve_keep_ratios, transform_benefit
from .probes import build_probes
from .pruner import P3BPruner
from .schedule import in_probe_window


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation of two 1-d tensors (ties get distinct
    ranks in order)."""
    def ranks(x):
        r = torch.empty(len(x), dtype=torch.float64)
        r[torch.sort(x.double(), stable=True).indices] = torch.arange(
            len(x), dtype=torch.float64)
        return r - r.mean()
    ra, rb = ranks(a), ranks(b)
    den = float(ra.norm() * rb.norm())
    return float(ra @ rb) / den if den > 0 else float('nan')


class ShadowProbes:
    """A probe bank trained beside the pruner's, with its own statistics.

    Args:
        pruner (P3BPruner): The pruner whose features it reads.
        num_classes (int): Classes of the task.
        probe (str): Probe design ('reference' or 'cheap').
        probe_width (int): Width of cheap probes. Defaults to 32.
        probe_convs (int, optional): Conv stages. Defaults to None.
        probe_fraction (float): Fraction of the batch. Defaults to 1.
        probe_window (int, optional): Train only this many steps before
            each update. Defaults to None.
        probe_lr (float): AdamW learning rate. Defaults to 5e-4.
        probe_weight_decay (float): AdamW weight decay. Defaults to 0.05.
        seed (int): Initialisation seed. Defaults to 0.
    """

    def __init__(self,
                 pruner: P3BPruner,
                 num_classes: int,
                 probe: str,
                 probe_width: int = 32,
                 probe_convs: Optional[int] = None,
                 probe_fraction: float = 1.0,
                 probe_window: Optional[int] = None,
                 probe_lr: float = 5e-4,
                 probe_weight_decay: float = 0.05,
                 seed: int = 0) -> None:
        self.pruner = pruner
        num = pruner.gated.num_sub_blocks
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.probes = build_probes(
                probe, num, pruner.view.embed_dims, num_classes,
                pruner.view.num_extra_tokens, probe_convs,
                probe_width).to(pruner.device)
        self.optim = torch.optim.AdamW(self.probes.parameters(), lr=probe_lr,
                                       weight_decay=probe_weight_decay)
        self.fraction, self.window = float(probe_fraction), probe_window
        self.gen = torch.Generator().manual_seed(seed + 1)
        self.sum = torch.zeros(2, num, dtype=torch.float64)
        self.count = 0
        self.last = None
        self.ema = None

    def runs(self, step: int) -> bool:
        p = self.pruner
        return in_probe_window(step, p.start, p.interval, p.final,
                               self.window)

    def step(self, step: int, features: List[torch.Tensor],
             targets: torch.Tensor) -> None:
        """One probe step on the pruner's features of ``step``."""
        if not self.runs(step):
            return
        if self.fraction < 1:
            batch = targets.shape[0]
            idx = torch.randperm(batch, generator=self.gen)[:max(
                1, int(round(self.fraction * batch)))].to(targets.device)
            features = [f.index_select(0, idx) for f in features]
            targets = targets.index_select(0, idx)
        self.probes.train()
        loss, ce = self.probes(features, targets, self.pruner.gated.patch_hw)
        self.optim.zero_grad()
        loss.backward()
        self.optim.step()
        if self.pruner.in_window(step):
            diff = torch.stack([ce[0] - ce[1], ce[2] - ce[3]]).double().cpu()
            if torch.isfinite(diff).all():
                self.sum += diff
                self.count += 1

    def budget(self, kept: torch.Tensor, final: bool) -> Dict[str, object]:
        """Goal keep ratios from this shadow's benefits (resets them)."""
        p = self.pruner
        if final and self.last is not None:
            self.sum += self.last[0]
            self.count += self.last[1]
        mean = self.sum / max(self.count, 1)
        new = torch.stack([
            transform_benefit(mean[t], kept, p.benefit_scale,
                              None if self.ema is None else self.ema[t],
                              p.ema_momentum) for t in range(2)
        ])
        self.ema = new
        imp = p.alpha * new[0] + (1 - p.alpha) * new[1]
        goal = solve_keep_ratios(imp, p.dense_params, p.keep_ratio,
                                 p.non_block_params)
        self.last = (self.sum.clone(), self.count)
        self.sum.zero_()
        self.count = 0
        return dict(goal_keep=goal, importance=imp, benefit=mean)


class ShadowP3BPruner(P3BPruner):
    """P3BPruner that also trains shadow probe designs (see module doc).

    Args:
        *args: The arguments of :class:`P3BPruner`.
        shadows (dict): Name -> :class:`ShadowProbes` keyword arguments
            (without ``pruner`` and ``num_classes``).
        **kwargs: The keyword arguments of :class:`P3BPruner`.
    """

    def __init__(self, model, num_classes: int, *args,
                 shadows: Optional[Dict[str, dict]] = None, **kwargs) -> None:
        super().__init__(model, num_classes, *args, **kwargs)
        if self.probes is None or self.probe_window is not None:
            raise ValueError('ShadowP3BPruner: the driving probes must run '
                             'every iteration (block_budget="benefit", '
                             'probe_window=None)')
        self.shadows = {name: ShadowProbes(self, num_classes, **cfg)
                        for name, cfg in (shadows or {}).items()}
        self.agreement: List[dict] = []
        self._step = 0

    def after_iter(self, step, targets=None, grad_scale=None):
        feats = self.gated.features
        if self.gated.capture and targets is not None and all(
                f is not None for f in feats):
            for shadow in self.shadows.values():
                shadow.step(step, feats, targets)
        self._step = step
        return super().after_iter(step, targets, grad_scale)

    def update(self, step: int, final: bool = False) -> dict:
        kept = self.kept_params()
        shadow = {name: s.budget(kept, final)
                  for name, s in self.shadows.items()}
        record = super().update(step, final)
        ref_goal = torch.tensor(record['goal_keep'], dtype=torch.float64)
        ref_imp = torch.tensor(record['importance'], dtype=torch.float64)
        ref_ben = [torch.tensor(record[k], dtype=torch.float64)
                   for k in ('benefit_cls', 'benefit_patch')]
        row = dict(step=int(step), finalized=bool(final),
                   goal_keep=record['goal_keep'], shadows={})
        for name, res in shadow.items():
            diff = (res['goal_keep'] - ref_goal).abs()
            row['shadows'][name] = dict(
                goal_keep=[float(v) for v in res['goal_keep']],
                max_abs_keep_diff=float(diff.max()),
                mean_abs_keep_diff=float(diff.mean()),
                spearman_benefit_cls=spearman(res['benefit'][0], ref_ben[0]),
                spearman_benefit_patch=spearman(res['benefit'][1],
                                                ref_ben[1]),
                spearman_importance=spearman(res['importance'], ref_imp))
        self.agreement.append(row)
        return record


__all__ = ['ShadowP3BPruner', 'ShadowProbes', 'spearman']
