"""Keep scores per patch: the learned selector head and the random baseline.

The learned head is the selector of VPP's Map-SM (Glandorf et al., CVPR 2026
Workshops, https://arxiv.org/abs/2604.00827):

.. math::

    f = \\mathrm{LogSoftmax}(\\mathrm{MLP}(\\mathrm{LN}(x))) \\in
    \\mathbb{R}^{N \\times 2}, \\quad
    \\bar f = \\mathrm{AvgPool}_{k \\times k}(f), \\quad
    s = \\mathrm{softmax}(\\bar f + g / \\tau)_{\\text{keep}}

``x`` is the mapped prior (temporal selector) or the current frame's own
tokens (image-only baseline). The k x k average pool (replicate padding) is
the *smoothing*: a patch next to kept patches gets a higher score, so a
sparse sample of the background survives and objects entering the scene are
not missed. ``g`` is Gumbel noise (training only, unless
``test_gumbel_noise``: the official code samples at test time too). The top-k of ``s`` is the
hard selection; a straight-through estimator carries the gradient into ``s``.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .mapping import sample_gumbel


def smooth_logits(logits: torch.Tensor, hw: Tuple[int, int],
                  kernel: int) -> torch.Tensor:
    """k x k average pool with replicate padding over the patch grid.

    Args:
        logits (Tensor): (B, N, K) per-patch values, N = h * w row-major.
        hw (tuple): Grid (h, w).
        kernel (int): Odd window size; 1 returns ``logits`` unchanged.

    Returns:
        Tensor: (B, N, K).
    """
    if kernel == 1:
        return logits
    B, N, K = logits.shape
    h, w = hw
    if h * w != N:
        raise ValueError(f'smooth_logits: grid {h}x{w} does not hold {N} '
                         'patches (smoothing needs the full grid)')
    pad = kernel // 2
    f = logits.transpose(1, 2).reshape(B, K, h, w)
    f = F.pad(f, (pad, pad, pad, pad), mode='replicate')
    f = F.avg_pool2d(f, kernel, stride=1)
    return f.reshape(B, K, N).transpose(1, 2)


class ScoreHead(nn.Module):
    """LayerNorm -> MLP(C -> hidden -> 2) -> log-softmax -> smoothing.

    Args:
        embed_dims (int): Input token width C.
        hidden_dims (int): MLP hidden width.
        smooth_kernel (int): Odd smoothing window over the grid; 1 disables
            it (then the head also scores a subset of patches). Defaults
            to 1.
        tau (float): Gumbel temperature; the noise is ``g / tau``.
            Defaults to 10.
        gumbel_noise (bool): Add Gumbel noise in training. Defaults to True.
        test_gumbel_noise (bool): Add Gumbel noise at inference too.
            Defaults to False.
    """

    def __init__(self,
                 embed_dims: int,
                 hidden_dims: int,
                 smooth_kernel: int = 1,
                 tau: float = 10.,
                 gumbel_noise: bool = True,
                 test_gumbel_noise: bool = False) -> None:
        super().__init__()
        if smooth_kernel < 1 or smooth_kernel % 2 == 0:
            raise ValueError(f'ScoreHead: smooth_kernel must be an odd '
                             f'integer >= 1, got {smooth_kernel}')
        if tau <= 0:
            raise ValueError(f'ScoreHead: tau must be > 0, got {tau}')
        self.norm = nn.LayerNorm(embed_dims)
        self.mlp = nn.Sequential(
            nn.Linear(embed_dims, hidden_dims), nn.GELU(),
            nn.Linear(hidden_dims, 2))
        self.smooth_kernel = smooth_kernel
        self.tau = tau
        self.gumbel_noise = gumbel_noise
        self.test_gumbel_noise = test_gumbel_noise

    def forward(self,
                x: torch.Tensor,
                hw: Optional[Tuple[int, int]] = None) -> torch.Tensor:
        """Soft keep probability per patch.

        Args:
            x (Tensor): Patch features (B, M, C).
            hw (tuple, optional): Grid; needed when smoothing (M = h * w).

        Returns:
            Tensor: float32 (B, M) in (0, 1).
        """
        # scores in float32 (under autocast the MLP runs in half): ties in
        # half-precision scores would make the top-k arbitrary
        logp = self.mlp(self.norm(x)).float().log_softmax(dim=-1)
        if self.smooth_kernel > 1:
            if hw is None:
                raise ValueError('ScoreHead: smoothing needs the grid hw')
            logp = smooth_logits(logp, hw, self.smooth_kernel)
        noise = self.gumbel_noise if self.training \
            else self.test_gumbel_noise
        if noise:
            logp = logp + sample_gumbel(logp) / self.tau
        return logp.softmax(dim=-1)[..., 0]


class RandomScore(nn.Module):
    """Uniform random keep scores (the random-selection baseline)."""

    smooth_kernel = 1

    def forward(self,
                x: torch.Tensor,
                hw: Optional[Tuple[int, int]] = None) -> torch.Tensor:
        return torch.rand(x.shape[:2], device=x.device)
