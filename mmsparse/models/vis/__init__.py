"""Registered video instance segmentation models."""
from .keep_set_pixel_decoder import KeepSetPixelDecoder
from .vpp_mask2former_video import VPPMask2FormerVideo

__all__ = ['KeepSetPixelDecoder', 'VPPMask2FormerVideo']
