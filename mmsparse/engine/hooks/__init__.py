"""Hooks of mmsparse."""
from .art_hook import ARTHook  # noqa: F401,E402
from .load_from_check_hook import LoadFromCheckHook  # noqa: F401
from .magnitude_pruning_hooks import (  # noqa: F401,E402
    GradualMagnitudePruningHook, OneShotMagnitudePruningHook)
from .p3b_hook import P3BHook  # noqa: F401
from .sparse_inference_hook import SparseInferenceHook  # noqa: F401
from .vis_prediction_hook import VISPredictionDrawHook  # noqa: F401
from .vpp_visualization_hook import VPPVisualizationHook  # noqa: F401
