"""A small plain CNN for tiny images (e.g. the 8x8 digits)."""
from typing import Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from mmsparse.registry import MODELS


@MODELS.register_module()
class SmallConvNet(BaseModule):
    """Stacked ``conv3x3 - BN - ReLU`` stages with optional 2x2 max-pooling.

    Meant for images too small for mmpretrain's backbones (LeNet5 needs
    32x32): with ``widths=(32, 64, 128)`` and ``pool_after=(1, 2)`` an 8x8
    input gives a 128x2x2 map (~92k conv weights).

    Args:
        in_channels (int): Input channels. Defaults to 1.
        widths (Sequence[int]): Output channels of each stage.
            Defaults to (32, 64, 128).
        pool_after (Sequence[int]): Indices of stages followed by a 2x2
            max-pooling. Defaults to (1, 2).
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 in_channels: int = 1,
                 widths: Sequence[int] = (32, 64, 128),
                 pool_after: Sequence[int] = (1, 2),
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not widths or not all(isinstance(w, int) and w > 0
                                 for w in widths):
            raise ValueError(f'widths must be positive ints, got {widths!r}')
        if any(not 0 <= i < len(widths) for i in pool_after):
            raise ValueError(f'pool_after indices must be in [0, '
                             f'{len(widths)}), got {pool_after!r}')
        layers = []
        channels = in_channels
        for i, width in enumerate(widths):
            layers += [
                nn.Conv2d(channels, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True)
            ]
            if i in pool_after:
                layers.append(nn.MaxPool2d(2))
            channels = width
        self.layers = nn.Sequential(*layers)
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor]:
        return (self.layers(x), )
