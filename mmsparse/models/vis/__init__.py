"""Registered video instance segmentation models."""
from .vpp_mask2former_video import VPPMask2FormerVideo

__all__ = ['VPPMask2FormerVideo']
