"""Registered models of mmsparse."""
from .backbones import *  # noqa: F401,F403
from .vis import *  # noqa: F401,F403
