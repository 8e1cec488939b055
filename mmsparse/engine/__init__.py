"""Hooks and other run-time adapters."""
from .hooks import *  # noqa: F401,F403
from .hooks.num_classes_check_hook import NumClassesCheckHook
from .schedulers import *  # noqa: F401,F403
from .sparse_checkpoint_loader import load_from_sparse  # noqa: F401,E402
