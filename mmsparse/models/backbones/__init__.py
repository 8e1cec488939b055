"""Registered backbones."""
from .vit_pyramid import SimplePyramid, ViTPyramid

__all__ = ['SimplePyramid', 'ViTPyramid']
