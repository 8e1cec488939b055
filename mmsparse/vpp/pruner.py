"""Video Patch Pruning over a ViT block loop (plain PyTorch).

Glandorf, Norrenbrock, Rosenhahn, "Video Patch Pruning: Efficient Video
Instance Segmentation via Early Token Reduction", CVPR 2026 Workshops,
https://arxiv.org/abs/2604.00827.

One frame goes through the blocks; at each *stage* ``(prune_layer,
keep_ratio)`` the patches are reduced to exactly
``round(keep_ratio * N)`` of the grid:

* stage 0 scores come from the selector: ``'temporal'`` (Map-SM: the
  previous frame's deep features mapped onto this frame by
  :class:`~mmsparse.vpp.mapping.TemporalMapping`, then a smoothed
  :class:`~mmsparse.vpp.selectors.ScoreHead`), ``'image'`` (the same head on
  this frame's own tokens, no prior) or ``'random'``;
* later stages score the still-kept patches with a small image head (the
  paper's selective modules; random for the random baseline). A patch
  pruned once stays pruned.

Two execution modes give the same result (up to float rounding, and without
Gumbel noise):

* training (``self.training``): all tokens run, pruned ones are hidden as
  attention keys and pass through unchanged,
  ``x <- m * block(x, key_mask) + (1 - m) * x`` with the straight-through
  mask ``m = hard - soft.detach() + soft``;
* inference: the kept tokens are gathered, the blocks run on them only and
  they are scattered back, so the compute is really saved.

Fill-back: in both modes a pruned position ends up holding its token from
the block where it was pruned (pass-through == not overwritten by scatter),
so the final map has the dense grid and the pixel decoder sees in training
exactly what it sees at inference.

The first frame of a video has no prior and runs dense; it records the prior
for the next frame (:class:`FramePrior`).
"""
from dataclasses import dataclass, field
from numbers import Real
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from .mapping import TemporalMapping
from .schedule import check_schedule, patch_keep_ratio, schedule_pkr
from .selectors import RandomScore, ScoreHead
from .tokens import (gather_tokens, indices_to_mask, num_keep, scatter_tokens,
                     straight_through, token_positions, topk_indices,
                     topk_keep_mask)

SELECTORS = ('temporal', 'image', 'random')


@dataclass
class FramePrior:
    """What a frame leaves for the next one.

    Attributes:
        key (Tensor): (B, N, C) patch tokens entering the first pruning
            block (the keys of the temporal affinity).
        value (Tensor): (B, N, C) patch tokens after ``prior_layer`` (the
            deep features that are mapped).
        valid (Tensor | None): (B, N) bool, patches processed at
            ``prior_layer``; None = all.
    """
    key: torch.Tensor
    value: torch.Tensor
    valid: Optional[torch.Tensor] = None


@dataclass
class FrameStats:
    """Per-frame pruning record.

    Attributes:
        pruned (bool): Whether the frame was pruned (False: dense).
        counts (list[int]): Patches processed per block.
        num_tokens (int): Patches on the grid.
        keep_mask (Tensor | None): (B, N) bool, patches kept at the last
            stage (None when dense).
        soft_keep (list[Tensor]): Per learned stage, a scalar for the
            selection loss (training only): stage 0, the mean soft keep
            probability over the grid; later stages, the expected fraction
            of the grid kept (soft score x the previous stages'
            straight-through gate, averaged over the grid).
        gate (Tensor | None): (B, N) float, forward value ``keep_mask``; in
            training the straight-through gate of the stages (a loss
            downstream of the backbone reaches the selectors through it).
            None when dense.
    """
    pruned: bool
    counts: List[int]
    num_tokens: int
    keep_mask: Optional[torch.Tensor] = None
    soft_keep: List[torch.Tensor] = field(default_factory=list)
    gate: Optional[torch.Tensor] = None

    @property
    def keep_ratio(self) -> float:
        """Fraction of patches kept after the last stage."""
        return self.counts[-1] / self.num_tokens

    @property
    def pkr(self) -> float:
        """Patch keep ratio of this frame (mean over blocks)."""
        return patch_keep_ratio(self.counts, self.num_tokens)


Block = Callable[..., torch.Tensor]


class VideoPatchPruner(nn.Module):
    """Selectors and the pruned block loop of VPP.

    Args:
        embed_dims (int): Token width C.
        num_layers (int): Number of blocks L.
        keep_ratio (float | Sequence[float]): Fraction of all patches kept
            from each stage on; strictly decreasing. Defaults to 0.4.
        prune_layer (int | Sequence[int]): Block index of each stage (the
            tokens entering that block are pruned). Defaults to 1.
        selector (str): Stage-0 scores: 'temporal' (Map-SM), 'image'
            (image-only baseline) or 'random'. Defaults to 'temporal'.
        prior_layer (int, optional): Block whose output is the deep prior
            of the next frame. Defaults to None:
            ``max(prune_layer[0], L // 2 - 1)`` (5 for 12 blocks, as in the
            paper).
        num_extra_tokens (int): Leading non-patch tokens, never pruned.
            Defaults to 1.
        hidden_ratio (float): Hidden width / C of the stage-0 head.
            Defaults to 0.5.
        stage_hidden_ratio (float): Hidden width / C of later-stage heads.
            Defaults to 0.25.
        smooth_kernel (int): Smoothing window of the stage-0 head (odd).
            Defaults to 9.
        tau_match (float): Gumbel temperature of the temporal assignment.
            Defaults to 10.
        tau_select (float): Gumbel temperature of the keep scores.
            Defaults to 10.
        gumbel_noise (bool): Gumbel noise in training. Defaults to True.
        test_gumbel_noise (bool): Gumbel noise at inference too, in the
            temporal assignment and the keep scores (the official code
            samples at test time; the default is deterministic). The
            selection stays an exact top-k of the noisy scores.
            Defaults to False.
        loss_weight (float): Overall weight of the selection loss (the
            official ``ratio_sm_sparsity_loss``). Defaults to 40.
        map_loss_weight (float): Weight of the stage-0 term against each
            later stage's ratio term, inside the normalisation (the
            official ``ratio_match_module_sparsity_loss``). Defaults to 10.
        soft_target (float): Target of the stage-0 mean soft keep
            probability. Defaults to 0.5.
    """

    def __init__(self,
                 embed_dims: int,
                 num_layers: int,
                 keep_ratio: Union[float, Sequence[float]] = 0.4,
                 prune_layer: Union[int, Sequence[int]] = 1,
                 selector: str = 'temporal',
                 prior_layer: Optional[int] = None,
                 num_extra_tokens: int = 1,
                 hidden_ratio: float = 0.5,
                 stage_hidden_ratio: float = 0.25,
                 smooth_kernel: int = 9,
                 tau_match: float = 10.,
                 tau_select: float = 10.,
                 gumbel_noise: bool = True,
                 test_gumbel_noise: bool = False,
                 loss_weight: float = 40.,
                 map_loss_weight: float = 10.,
                 soft_target: float = 0.5) -> None:
        super().__init__()
        name = type(self).__name__
        if selector not in SELECTORS:
            raise ValueError(f'{name}: selector must be one of {SELECTORS}, '
                             f'got {selector!r}')
        self.keep_ratios, self.prune_layers = check_schedule(
            keep_ratio, prune_layer, num_layers, owner=name)
        self.num_layers = num_layers
        if prior_layer is None:
            prior_layer = max(self.prune_layers[0], num_layers // 2 - 1)
        if isinstance(prior_layer, bool) or not isinstance(prior_layer, int) \
                or not 0 <= prior_layer < num_layers:
            raise ValueError(f'{name}: prior_layer must be an int in '
                             f'[0, {num_layers - 1}], got {prior_layer!r}')
        for key, value in (('loss_weight', loss_weight),
                           ('map_loss_weight', map_loss_weight)):
            if isinstance(value, bool) or not isinstance(value, Real) \
                    or value < 0:
                raise ValueError(f'{name}: {key} must be a number >= 0, got '
                                 f'{value!r}')
        if isinstance(soft_target, bool) or not isinstance(soft_target, Real) \
                or not 0 < soft_target < 1:
            raise ValueError(f'{name}: soft_target must be in (0, 1), got '
                             f'{soft_target!r}')
        if isinstance(smooth_kernel, bool) or \
                not isinstance(smooth_kernel, int) or smooth_kernel < 1 \
                or smooth_kernel % 2 == 0:
            raise ValueError(f'{name}: smooth_kernel must be an odd int >= '
                             f'1, got {smooth_kernel!r}')
        for key, value in (('tau_match', tau_match),
                           ('tau_select', tau_select),
                           ('hidden_ratio', hidden_ratio),
                           ('stage_hidden_ratio', stage_hidden_ratio)):
            if isinstance(value, bool) or not isinstance(value, Real) \
                    or value <= 0:
                raise ValueError(f'{name}: {key} must be a number > 0, got '
                                 f'{value!r}')
        self.prior_layer = prior_layer
        self.selector = selector
        self.num_extra_tokens = num_extra_tokens
        self.loss_weight = loss_weight
        self.map_loss_weight = map_loss_weight
        self.soft_target = soft_target
        self.dense = self.keep_ratios == (1.0, )
        self._stage_of = {layer: s for s, layer in enumerate(self.prune_layers)}

        if not isinstance(test_gumbel_noise, bool):
            raise ValueError(f'{name}: test_gumbel_noise must be a bool, got '
                             f'{test_gumbel_noise!r}')
        self.mapping = TemporalMapping(
            tau_match, gumbel_noise, test_gumbel_noise) \
            if selector == 'temporal' and not self.dense else None
        scorers = []
        for s in range(0 if self.dense else len(self.keep_ratios)):
            if selector == 'random':
                scorers.append(RandomScore())
            elif s == 0:
                scorers.append(
                    ScoreHead(embed_dims, max(1, int(embed_dims * hidden_ratio)),
                              smooth_kernel, tau_select, gumbel_noise,
                              test_gumbel_noise))
            else:
                scorers.append(
                    ScoreHead(embed_dims,
                              max(1, int(embed_dims * stage_hidden_ratio)), 1,
                              tau_select, gumbel_noise, test_gumbel_noise))
        self.scorers = nn.ModuleList(scorers)

    # ----------------------------------------------------------- helpers
    @property
    def pkr(self) -> float:
        """Ideal PKR of a pruned frame under this schedule."""
        return schedule_pkr(self.keep_ratios, self.prune_layers,
                            self.num_layers)

    def set_gumbel_noise(self, enabled: bool) -> None:
        """Switch the training-time Gumbel noise of all selectors."""
        for m in self.modules():
            if hasattr(m, 'gumbel_noise'):
                m.gumbel_noise = enabled

    def set_test_gumbel_noise(self, enabled: bool) -> None:
        """Switch the inference-time Gumbel noise of all selectors."""
        for m in self.modules():
            if hasattr(m, 'test_gumbel_noise'):
                m.test_gumbel_noise = enabled

    def _scores(self, stage: int, tokens: torch.Tensor, hw: Tuple[int, int],
                prior: FramePrior) -> torch.Tensor:
        """Soft keep scores (B, M) of ``tokens`` (B, M, C) at ``stage``."""
        scorer = self.scorers[stage]
        if stage == 0 and self.mapping is not None:
            tokens = self.mapping(tokens, prior.key, prior.value, hw,
                                  prior.valid)
        return scorer(tokens, hw)

    # ----------------------------------------------------------- forward
    def forward(self,
                x: torch.Tensor,
                hw: Tuple[int, int],
                blocks: Sequence[Block],
                prior: Optional[FramePrior] = None
                ) -> Tuple[torch.Tensor, FramePrior, FrameStats]:
        """Run one frame through ``blocks`` with pruning.

        Args:
            x (Tensor): Embedded tokens (B, E + N, C) of one frame per
                sample.
            hw (tuple): Patch grid (h, w).
            blocks (Sequence[callable]): The L blocks; called as
                ``block(x)`` or ``block(x, attn_mask)`` with a bool (B, L)
                key mask (True = attend) in training.
            prior (FramePrior, optional): The previous frame's prior. None:
                this is a first frame, it runs dense. Defaults to None.

        Returns:
            tuple: tokens (B, E + N, C) on the full grid (pruned positions
            filled back), this frame's :class:`FramePrior` and its
            :class:`FrameStats`.
        """
        if len(blocks) != self.num_layers:
            raise ValueError(f'VideoPatchPruner: built for '
                             f'{self.num_layers} blocks, got {len(blocks)}')
        if prior is None or self.dense:
            return self._forward_dense(x, blocks)
        if self.training:
            return self._forward_masked(x, hw, blocks, prior)
        return self._forward_gather(x, hw, blocks, prior)

    def _forward_dense(self, x, blocks):
        E = self.num_extra_tokens
        N = int(x.shape[1]) - E
        key = value = None
        for i, block in enumerate(blocks):
            if i == self.prune_layers[0]:
                key = x[:, E:]
            x = block(x)
            if i == self.prior_layer:
                value = x[:, E:]
        stats = FrameStats(False, [N] * self.num_layers, N)
        return x, FramePrior(key, value), stats

    def _forward_masked(self, x, hw, blocks, prior):
        E = self.num_extra_tokens
        B, N = x.shape[0], int(x.shape[1]) - E
        keep = gate = None
        key = value = valid = None
        counts, soft_keep = [], []
        n = N
        for i, block in enumerate(blocks):
            if i == self.prune_layers[0]:
                key = x[:, E:]
            if i in self._stage_of:
                s = self._stage_of[i]
                soft = self._scores(s, x[:, E:], hw, prior)
                n = num_keep(N, self.keep_ratios[s])
                hard = topk_keep_mask(soft, n, keep)
                m = straight_through(hard, soft) \
                    if soft.requires_grad else hard
                if soft.requires_grad:
                    # stage 0: mean soft keep; later: expected kept share
                    soft_keep.append(soft.mean() if gate is None else
                                     (soft * gate).mean())
                gate = m if gate is None else m * gate
                keep = hard.bool()
            if gate is None:
                x = block(x)
            else:
                ones = x.new_ones(B, E)
                attn_mask = torch.cat([ones.bool(), keep], dim=1)
                g = torch.cat([ones, gate], dim=1).unsqueeze(-1)
                x = g * block(x, attn_mask) + (1 - g) * x
            counts.append(n)
            if i == self.prior_layer:
                value = x[:, E:]
                valid = keep
        stats = FrameStats(True, counts, N, keep, soft_keep, gate)
        return x, FramePrior(key, value, valid), stats

    def _forward_gather(self, x, hw, blocks, prior):
        E = self.num_extra_tokens
        N = int(x.shape[1]) - E
        full = pos = grid_idx = None
        key = value = valid = None
        counts = []
        n = N
        for i, block in enumerate(blocks):
            if i == self.prune_layers[0]:
                key = x[:, E:]
            if i in self._stage_of:
                s = self._stage_of[i]
                full = x if full is None else scatter_tokens(full, pos, x)
                scores = self._scores(s, x[:, E:], hw, prior)
                n = num_keep(N, self.keep_ratios[s])
                sel = topk_indices(scores, n)
                grid_idx = sel if grid_idx is None else grid_idx.gather(1, sel)
                pos = token_positions(grid_idx, E)
                x = gather_tokens(full, pos)
            x = block(x)
            counts.append(n)
            if i == self.prior_layer:
                if full is None:
                    value = x[:, E:]
                else:
                    value = scatter_tokens(full, pos, x)[:, E:]
                    valid = indices_to_mask(grid_idx, N)
        keep = gate = None
        if full is not None:
            x = scatter_tokens(full, pos, x)
            keep = indices_to_mask(grid_idx, N)
            gate = keep.to(x.dtype)
        stats = FrameStats(full is not None, counts, N, keep, gate=gate)
        return x, FramePrior(key, value, valid), stats

    # -------------------------------------------------------------- loss
    def loss(self, stats: Sequence[FrameStats]) -> Dict[str, torch.Tensor]:
        """Selection loss, the official VPP weighting, summed over frames.

        Per pruned frame (as the official code, which adds one such loss
        per frame of the clip):

        .. math::

            \\mathcal{L} = w \\cdot \\frac{w_0 (\\bar s_0 - t_0)^2 +
            \\sum_{s \\ge 1} (\\bar k_s - r_s)^2}{w_0 + S}

        with ``w = loss_weight`` (40), ``w_0 = map_loss_weight`` (10),
        ``t_0 = soft_target`` (0.5), ``\\bar s_0`` the mean soft keep
        probability of stage 0 (Map-SM, or the image head of the baseline)
        and, for each of the ``S`` later learned stages, ``\\bar k_s`` the
        expected fraction of the grid it keeps against its keep ratio
        ``r_s``. The official code uses the hard Gumbel sample's mean there;
        our top-k meets ``r_s`` exactly, which would make that term zero, so
        it is taken on the soft scores (what the sample is drawn from): it
        keeps the later heads calibrated and out of saturation, which keeps
        the straight-through gradient alive, as the stage-0 term does.

        Returns:
            dict: ``{'loss_vpp_select': Tensor}``, empty when no stage is
            learned (dense, random selector, or no pruned frame).
        """
        terms = []
        for st in stats:
            if not st.soft_keep:
                continue
            first, later = st.soft_keep[0], st.soft_keep[1:]
            num = self.map_loss_weight * (first - self.soft_target)**2
            for s, k in enumerate(later, start=1):
                num = num + (k - self.keep_ratios[s])**2
            den = self.map_loss_weight + len(later)
            terms.append(num / den if den > 0 else num * 0)
        if not terms:
            return {}
        return dict(loss_vpp_select=self.loss_weight * torch.stack(terms).sum())
