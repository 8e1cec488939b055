"""Registered evaluation metrics."""
from .ytvis_ap_metric import YouTubeVISAPMetric

__all__ = ['YouTubeVISAPMetric']
