"""Registered backbones."""
from .vit_pyramid import SimplePyramid, ViTPyramid

__all__ = ['SimplePyramid', 'ViTPyramid']
from .cifar_resnet import CifarResNet  # noqa: F401,E402
from .p3b_vit_pyramid import P3BViTPyramid  # noqa: F401,E402
from .slim_vit import SlimVisionTransformer, SlimViTPyramid  # noqa: F401,E402
from .small_convnet import SmallConvNet  # noqa: F401,E402
from .vpp_backbone import VPPBackbone  # noqa: F401,E402
