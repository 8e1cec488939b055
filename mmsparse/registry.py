"""Where mmsparse registers its modules.

mmengine resolves a bare ``type`` in the registry of the current
``default_scope`` and then in its *parents*, never in sibling scopes. mmdet's
and mmpretrain's registries are both children of mmengine's root registries,
so everything mmsparse registers goes into the roots: the same config entry
then resolves under ``default_scope='mmdet'`` and ``default_scope='mmpretrain'``.
"""
from mmengine.registry import DATASETS, HOOKS, METRICS, MODELS, TRANSFORMS

__all__ = ['DATASETS', 'HOOKS', 'METRICS', 'MODELS', 'TRANSFORMS']
