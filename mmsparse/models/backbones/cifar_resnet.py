"""The CIFAR ResNet (depth 6n+2) of the pruning literature."""
from typing import Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from mmsparse.registry import MODELS


class _BasicBlock(nn.Module):

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(
            in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride,
                          bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


@MODELS.register_module()
class CifarResNet(BaseModule):
    """ResNet for 32x32 inputs: a 3x3 stem and three stages of ``n`` basic
    blocks (depth ``6n + 2``), strides 1, 2, 2.

    He et al., "Deep Residual Learning for Image Recognition", CVPR 2016
    (Sec. 4.2). HyperSparse (https://arxiv.org/abs/2308.07163) and GraSP use
    ResNet-32 with doubled widths ``(32, 64, 128)`` and a 32-channel stem
    (~1.86M weights); the 1x1 projection shortcuts follow their code.

    Args:
        depth (int): ``6n + 2``, e.g. 20, 32, 56. Defaults to 32.
        widths (Sequence[int]): Channels of the three stages.
            Defaults to (32, 64, 128).
        stem_channels (int): Channels of the stem. Defaults to 32.
        in_channels (int): Input channels. Defaults to 3.
        init_cfg (dict or list, optional): Initialization config. Defaults
            to Kaiming (fan_out) for convolutions, BN weights 1.
    """

    def __init__(self,
                 depth: int = 32,
                 widths: Sequence[int] = (32, 64, 128),
                 stem_channels: int = 32,
                 in_channels: int = 3,
                 init_cfg=(dict(type='Kaiming', layer='Conv2d',
                                mode='fan_out', nonlinearity='relu'),
                           dict(type='Constant', layer='BatchNorm2d',
                                val=1))):
        super().__init__(init_cfg=list(init_cfg) if init_cfg else None)
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f'depth must be 6n+2 (20, 32, 44, 56, ...), got '
                             f'{depth}')
        if len(widths) != 3:
            raise ValueError(f'widths must have 3 entries, got {widths!r}')
        n = (depth - 2) // 6
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(stem_channels), nn.ReLU(inplace=True))
        stages = []
        channels = stem_channels
        for i, width in enumerate(widths):
            blocks = []
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(_BasicBlock(channels, width, stride))
                channels = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor]:
        return (self.stages(self.stem(x)), )
