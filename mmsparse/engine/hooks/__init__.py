"""Hooks of mmsparse."""
from .vis_prediction_hook import VISPredictionDrawHook  # noqa: F401
