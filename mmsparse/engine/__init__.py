"""Hooks and other run-time adapters."""
from .hooks import *  # noqa: F401,F403
