"""Probe heads that measure the block benefit of P3B.

For sub-block ``i`` with input ``x_{i-1}`` and output ``x_i``, the same
probe ``Psi_i`` is applied to both (on detached features, so no gradient
reaches the backbone) and the block benefit is

.. math:: \\Delta\\Psi_i = CE(\\Psi_i(x_{i-1})) - CE(\\Psi_i(x_i))

separately for a linear head on the class token and a patch head
(2 x [Conv3x3 D->D without bias, BN, ReLU], global average pooling, linear
classifier) on the patch grid (:class:`ProbeBank`, the paper's design).

:class:`CheapProbeBank` measures the same quantity at a small fraction of
the cost (one narrow probe per residual-stream position, shared
classifiers); :func:`build_probes` picks the design by name.
"""
import math
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


def _grid(n: int, hw: Optional[Tuple[int, int]]) -> Tuple[int, int]:
    """The patch grid of ``n`` tokens: ``hw`` if it fits, else square."""
    if hw is not None and hw[0] * hw[1] == n:
        return tuple(hw)
    side = math.isqrt(n)
    if side * side != n:
        raise ValueError(f'P3B probes: cannot lay {n} patch tokens out on a '
                         'grid; the patch grid is unknown')
    return side, side


class ProbeHead(nn.Module):
    """The cls and patch probes of one sub-block.

    Args:
        embed_dims (int): Token width D.
        num_classes (int): Classes of the task.
        num_convs (int): Conv-BN-ReLU stages of the patch head.
            Defaults to 2.
    """

    def __init__(self, embed_dims: int, num_classes: int,
                 num_convs: int = 2) -> None:
        super().__init__()
        self.cls_head = nn.Linear(embed_dims, num_classes)
        layers = []
        for _ in range(num_convs):
            layers += [
                nn.Conv2d(embed_dims, embed_dims, 3, padding=1, bias=False),
                nn.BatchNorm2d(embed_dims),
                nn.ReLU(inplace=True)
            ]
        self.patch_head = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1),
                                        nn.Flatten(1),
                                        nn.Linear(embed_dims, num_classes))

    def forward(self, cls_token: torch.Tensor,
                patch_map: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Logits of the cls probe (B, D) and the patch probe (B, D, h, w)."""
        return self.cls_head(cls_token), self.patch_head(patch_map)


def soft_cross_entropy(logits: torch.Tensor,
                       targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with class indices (B, ) or soft targets (B, C)."""
    if targets.dim() == 1:
        return F.cross_entropy(logits, targets)
    return torch.sum(-targets * F.log_softmax(logits, dim=-1), dim=-1).mean()


class ProbeBank(nn.Module):
    """One :class:`ProbeHead` per sub-block, applied to block in- and output.

    Args:
        num_sub_blocks (int): Number of attention + MLP sub-blocks.
        embed_dims (int): Token width.
        num_classes (int): Classes of the task.
        num_extra_tokens (int): Leading tokens not on the patch grid; the
            first is the class token (with none, the cls probe sees the mean
            token). Defaults to 1.
        num_convs (int): Conv stages of each patch head. Defaults to 2.
    """

    def __init__(self,
                 num_sub_blocks: int,
                 embed_dims: int,
                 num_classes: int,
                 num_extra_tokens: int = 1,
                 num_convs: int = 2) -> None:
        super().__init__()
        self.num_extra_tokens = num_extra_tokens
        self.heads = nn.ModuleList([
            ProbeHead(embed_dims, num_classes, num_convs)
            for _ in range(num_sub_blocks)
        ])

    def _split(self, x: torch.Tensor, hw: Optional[Tuple[int, int]]):
        x = x.float()
        if x.dim() == 4:  # (B, H, W, C) layouts
            x = x.flatten(1, 2)
        patches = x[:, self.num_extra_tokens:]
        cls = x[:, 0] if self.num_extra_tokens else patches.mean(1)
        grid = patches.transpose(1, 2).reshape(
            x.shape[0], -1, *_grid(patches.shape[1], hw))
        return cls, grid

    def forward(self, features: List[torch.Tensor], targets: torch.Tensor,
                hw: Optional[Tuple[int, int]] = None):
        """Probe losses on the residual stream.

        Args:
            features (list[Tensor]): 2L + 1 detached token tensors (input of
                every sub-block, then the output of the last).
            targets (Tensor): Class indices (B, ) or soft targets (B, C).
            hw (tuple, optional): Patch grid (h, w). Defaults to None
                (square).

        Returns:
            tuple: ``loss`` (sum of all probe losses, for the probes'
            optimizer) and ``ce`` of shape (4, num_sub_blocks): rows
            cls-in, cls-out, patch-in, patch-out.
        """
        split = [self._split(f, hw) for f in features]
        rows = []
        for i, head in enumerate(self.heads):
            # Separate calls: BN statistics of the input and output features
            # must not mix.
            cls_in, patch_in = head(*split[i])
            cls_out, patch_out = head(*split[i + 1])
            rows.append(torch.stack([
                soft_cross_entropy(logits, targets)
                for logits in (cls_in, cls_out, patch_in, patch_out)
            ]))
        ce = torch.stack(rows, dim=1)
        return ce.sum(), ce.detach()


class CheapProbeBank(nn.Module):
    """Cheap probes: one probe per residual-stream position, narrow width.

    Differences to :class:`ProbeBank` (the reference design), each cutting
    compute, memory, gradient traffic and checkpoint size:

    - one probe per position of the residual stream (``S + 1`` for ``S``
      sub-blocks) instead of one per sub-block applied to its input and its
      output: the output probe of sub-block ``i`` is the input probe of
      ``i + 1``, so every feature map is probed once (half the work). The
      benefit of sub-block ``i`` is the drop in probe loss from position
      ``i`` to ``i + 1``;
    - a linear down-projection ``D -> width`` per position (applied to all
      tokens: the class token and, as a 1x1 convolution, the patch grid)
      before the 3x3 convolutions, which run at ``width`` channels;
    - the two classifiers (``width -> C``, cls and patch) are shared by all
      positions (each position learns its own projection into them), so
      the probe size does not grow with ``S x C``;
    - after the projections, all positions run as one batched computation
      (grouped convolution, one BatchNorm over all positions' channels,
      one classifier call, one loss call), not ``S + 1`` small ones.

    Args:
        num_sub_blocks (int): Number of attention + MLP sub-blocks.
        embed_dims (int): Token width D.
        num_classes (int): Classes of the task.
        num_extra_tokens (int): Leading tokens not on the patch grid.
            Defaults to 1.
        width (int): Probe width after the down-projection. Defaults to 32.
        num_convs (int): Conv3x3-BN-ReLU stages of each patch probe.
            Defaults to 1.
    """

    def __init__(self,
                 num_sub_blocks: int,
                 embed_dims: int,
                 num_classes: int,
                 num_extra_tokens: int = 1,
                 width: int = 32,
                 num_convs: int = 1) -> None:
        super().__init__()
        if not isinstance(width, int) or width < 1:
            raise ValueError(f'CheapProbeBank: width must be an int >= 1, '
                             f'got {width!r}')
        self.num_extra_tokens = num_extra_tokens
        self.positions = num_sub_blocks + 1
        self.width = width
        self.down = nn.ModuleList(
            [nn.Linear(embed_dims, width) for _ in range(self.positions)])
        channels = self.positions * width
        layers = []
        for _ in range(num_convs):
            # groups: every position has its own 3x3 convolution; the
            # BatchNorm channels are per position as well
            layers += [
                nn.Conv2d(channels, channels, 3, padding=1,
                          groups=self.positions, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(inplace=True)
            ]
        self.convs = nn.Sequential(*layers)
        self.cls_classifier = nn.Linear(width, num_classes)
        self.patch_classifier = nn.Linear(width, num_classes)

    def forward(self, features: List[torch.Tensor], targets: torch.Tensor,
                hw: Optional[Tuple[int, int]] = None):
        """Probe losses on the residual stream (see
        :meth:`ProbeBank.forward`; same outputs)."""
        z = torch.stack([
            down(f.float().flatten(1, 2) if f.dim() == 4 else f.float())
            for down, f in zip(self.down, features)
        ])  # (P, B, T, width)
        P, B = z.shape[:2]
        patches = z[:, :, self.num_extra_tokens:]
        cls = z[:, :, 0] if self.num_extra_tokens else patches.mean(2)
        grid = patches.permute(1, 0, 3, 2).reshape(
            B, P * self.width, *_grid(patches.shape[2], hw))
        pooled = self.convs(grid).mean((2, 3)).view(B, P, self.width)
        cls_ce = _position_ce(self.cls_classifier(cls), targets)
        patch_ce = _position_ce(
            self.patch_classifier(pooled.transpose(0, 1)), targets)
        ce = torch.stack([cls_ce[:-1], cls_ce[1:], patch_ce[:-1],
                          patch_ce[1:]])
        return cls_ce.sum() + patch_ce.sum(), ce.detach()


def _position_ce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy per position of logits (P, B, C)."""
    P, B, C = logits.shape
    if targets.dim() == 1:
        return F.cross_entropy(logits.reshape(P * B, C), targets.repeat(P),
                               reduction='none').view(P, B).mean(1)
    return torch.sum(-targets * F.log_softmax(logits, dim=-1),
                     dim=-1).mean(1)


#: Probe designs: the paper's and the cheap one.
PROBE_DESIGNS = ('reference', 'cheap')


def build_probes(design: str, num_sub_blocks: int, embed_dims: int,
                 num_classes: int, num_extra_tokens: int = 1,
                 num_convs: Optional[int] = None,
                 width: int = 32) -> nn.Module:
    """The probe bank of ``design`` ('reference' or 'cheap').

    Args:
        design (str): One of :data:`PROBE_DESIGNS`.
        num_sub_blocks (int): Attention + MLP sub-blocks.
        embed_dims (int): Token width.
        num_classes (int): Classes of the task.
        num_extra_tokens (int): Leading non-patch tokens. Defaults to 1.
        num_convs (int, optional): Conv stages of the patch probes; None =
            2 (reference) / 1 (cheap). Defaults to None.
        width (int): Width of the cheap probes. Defaults to 32.
    """
    if design == 'reference':
        return ProbeBank(num_sub_blocks, embed_dims, num_classes,
                         num_extra_tokens,
                         2 if num_convs is None else num_convs)
    if design == 'cheap':
        return CheapProbeBank(num_sub_blocks, embed_dims, num_classes,
                              num_extra_tokens, width,
                              1 if num_convs is None else num_convs)
    raise ValueError(f'probe must be one of {PROBE_DESIGNS}, got {design!r}')
