"""mmsparse: ART, P3B and VPP pruning for OpenMMLab configs.

``custom_imports=dict(imports=['mmsparse'], allow_failed_imports=False)`` in a
config imports this package, which registers every mmsparse module.
"""
from . import datasets, engine, evaluation, models  # noqa: F401,E402
from .version import __version__

__all__ = ['__version__']
