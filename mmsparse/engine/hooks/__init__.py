"""Hooks of mmsparse."""
from .vis_prediction_hook import VISPredictionDrawHook  # noqa: F401
from .p3b_hook import P3BHook  # noqa: F401
