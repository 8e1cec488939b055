"""Temporal mapping of the Mapping-Selective Module (Map-SM) of VPP.

Glandorf et al., "Video Patch Pruning: Efficient Video Instance Segmentation
via Early Token Reduction", CVPR 2026 Workshops,
https://arxiv.org/abs/2604.00827.

Each patch of the current frame is assigned to one patch of the previous
frame, and takes that patch's *deep* feature as its prior:

.. math::

    \\phi_{ij} = q_i \\cdot k_j + \\log_{10}\\big(10 \\cdot (2 - d_{ij}) / 2
    + 10^{-6}\\big), \\qquad \\tilde v_i = v_{a(i)}

with ``q`` the current frame's tokens entering the pruning block, ``k`` the
previous frame's tokens entering the same block (raw features, no
projection), ``d_ij`` the Manhattan distance of the two patches' normalised
(x, y) grid positions in [0, 1] (nearby patches are favoured: objects move
little between frames), and ``v`` the previous frame's tokens after a deeper
block. Keys the previous frame pruned are invalid (``phi = -inf``).

``a(i)`` is a hard Gumbel-softmax sample in training (one-hot forward,
softmax gradient) and ``argmax_j phi_ij`` + gather at inference
(``argmax_j (phi_ij + g_ij / tau)`` with ``test_gumbel_noise``, as the
official code, which samples at test time too).
"""
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn

from .tokens import straight_through


def manhattan_prior(h: int, w: int) -> torch.Tensor:
    """Spatial prior ``log10(10 * (2 - d) / 2 + 1e-6)`` of a grid, (N, N).

    Args:
        h (int): Grid rows.
        w (int): Grid columns.

    Returns:
        Tensor: float32 (h*w, h*w); patches in row-major order. The diagonal
        is ``log10(10) = 1``, opposite corners ``log10(1e-6) = -6``.
    """
    ys = torch.linspace(0, 1, h)
    xs = torch.linspace(0, 1, w)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing='ij')
    pos = torch.stack([grid_x.flatten(), grid_y.flatten()], dim=1)
    dist = torch.cdist(pos, pos, p=1)
    return torch.log10(10 * (2 - dist) / 2 + 1e-6)


def sample_gumbel(like: torch.Tensor) -> torch.Tensor:
    """Standard Gumbel noise ``-log(-log(U))`` shaped like ``like``.

    Drawn in float32 (half precision would round U to 0 or 1: infinite
    noise) and returned in ``like``'s dtype.
    """
    u = torch.rand(like.shape, device=like.device).clamp_(1e-10, 1 - 1e-7)
    return (-torch.log(-torch.log(u))).to(like.dtype)


class TemporalMapping(nn.Module):
    """Assign every current patch to one patch of the previous frame.

    Parameter-free (as in the paper): the affinity uses raw features. The
    spatial prior is computed once per grid size and cached (not saved in
    checkpoints).

    Args:
        tau (float): Gumbel temperature. The sample is
            ``one_hot(argmax(phi + g / tau))`` (``F.gumbel_softmax(phi * tau,
            tau)`` of the paper), so a larger ``tau`` means less noise; as
            ``tau -> inf`` training picks the inference assignment.
            Defaults to 10.
        gumbel_noise (bool): Add Gumbel noise in training. Defaults to True.
        test_gumbel_noise (bool): Add Gumbel noise at inference too (the
            official code samples the assignment at test time; the default
            is the deterministic argmax). Defaults to False.
    """

    def __init__(self,
                 tau: float = 10.,
                 gumbel_noise: bool = True,
                 test_gumbel_noise: bool = False) -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f'TemporalMapping: tau must be > 0, got {tau}')
        self.tau = tau
        self.gumbel_noise = gumbel_noise
        self.test_gumbel_noise = test_gumbel_noise
        self._prior_cache: Dict[Tuple, torch.Tensor] = {}

    def spatial_prior(self, hw: Tuple[int, int], ref: torch.Tensor):
        """The cached (N, N) float32 Manhattan prior on ``ref``'s device."""
        key = (int(hw[0]), int(hw[1]), ref.device)
        prior = self._prior_cache.get(key)
        if prior is None:
            prior = manhattan_prior(*key[:2]).to(ref.device, torch.float32)
            self._prior_cache[key] = prior
        return prior

    def affinity(self,
                 query: torch.Tensor,
                 key: torch.Tensor,
                 hw: Tuple[int, int],
                 valid: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``phi = q k^T + prior``, invalid keys at -inf: float32 (B, N, N).

        Always float32, with autocast disabled: the tokens are raw (C = 384
        for ViT-S, ``|phi|`` in the hundreds), where a half-precision
        product rounds in steps of 0.125 (fp16) to 2 (bf16) at 256, larger
        than the distance prior's step between neighbouring patches
        (~0.005) and the Gumbel noise (scale 1 / tau): rounding, not the
        features, would decide the assignment, and fp16 can overflow.
        """
        with torch.autocast(query.device.type, enabled=False):
            phi = query.float() @ key.float().transpose(1, 2)
            phi = phi + self.spatial_prior(hw, query)
            if valid is not None:
                phi = phi.masked_fill(~valid[:, None, :], float('-inf'))
        return phi

    def forward(self,
                query: torch.Tensor,
                key: torch.Tensor,
                value: torch.Tensor,
                hw: Tuple[int, int],
                valid: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Map the previous frame's deep features onto the current grid.

        Args:
            query (Tensor): Current patch tokens (B, N, C).
            key (Tensor): Previous frame's patch tokens at the same block
                (B, N, C).
            value (Tensor): Previous frame's deep patch tokens (B, N, Cv).
            hw (tuple): Grid (h, w) with h * w = N.
            valid (Tensor, optional): (B, N) bool, keys the previous frame
                kept. Defaults to None (all valid).

        Returns:
            Tensor: (B, N, Cv) mapped prior per current patch.
        """
        phi = self.affinity(query, key, hw, valid)
        if not self.training:
            if self.test_gumbel_noise:
                phi = phi + sample_gumbel(phi) / self.tau
            return value.gather(
                1, self.assign(phi)[..., None].expand(-1, -1,
                                                      value.shape[-1]))
        with torch.autocast(phi.device.type, enabled=False):
            if self.gumbel_noise:
                phi = phi + sample_gumbel(phi) / self.tau
            soft = phi.softmax(dim=-1)
            hard = torch.zeros_like(soft).scatter_(
                -1, phi.argmax(dim=-1, keepdim=True), 1.0)
            # forward value exactly one-hot (also after a cast to half)
            onehot = straight_through(hard, soft).to(value.dtype)
        return onehot @ value

    @staticmethod
    def assign(phi: torch.Tensor) -> torch.Tensor:
        """Inference assignment: the previous-frame patch of each current
        patch, ``argmax_j phi_ij``, (B, N) long."""
        return phi.argmax(dim=-1)
