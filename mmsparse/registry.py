"""Where mmsparse registers its modules.

mmengine resolves a bare ``type`` in the registry of the current
``default_scope`` and then in its *parents*, never in sibling scopes. mmdet's
and mmpretrain's registries are both children of mmengine's root registries,
so everything mmsparse registers goes into the roots: the same config entry
then resolves under ``default_scope='mmdet'`` and ``default_scope='mmpretrain'``.

Importing this module also adds mmsparse to mmengine's table of packages whose
configs a config may name as ``package::folder/config.py`` (mmengine knows a
fixed list of OpenMMLab packages). With it, a config outside the repository
inherits the configs of an installed (non-editable) mmsparse, which its wheel
carries in ``mmsparse/.mim/configs``::

    _base_ = 'mmsparse::toy/vpp_mask2former_vit_toy-ytvis21.py'

once ``mmsparse`` is imported before the config is read (``tools/*.py`` and
``mim`` do that). mmengine requires a folder in the name; the configs at the
top of ``configs/`` are ``'mmsparse::toy/../vpp_mask2former_ytvis21.py'``.
mmengine also marks the dicts such a base config defines with
``_scope_='mmsparse'``; :func:`drop_mmsparse_scope` (called by the tools after
loading a config) removes the marks.
"""
from typing import Any

from mmengine.config import Config
from mmengine.registry import DATASETS, HOOKS, METRICS, MODELS, TRANSFORMS

try:
    from mmengine.config.utils import MODULE2PACKAGE
except ImportError:  # older mmengine: the same table under its first name
    from mmengine.config.utils import PKG2PROJECT as MODULE2PACKAGE

MODULE2PACKAGE.setdefault('mmsparse', 'mmsparse')


def drop_mmsparse_scope(cfg: Any) -> Any:
    """Remove ``_scope_='mmsparse'`` from every dict of a loaded config, in place.

    mmengine gives each dict with a ``type`` that a ``package::`` base config
    defines (and that did not inherit another scope) ``_scope_=<package>``, to
    build it in that package's registries. mmsparse registers into mmengine's
    root registries and has no scope of its own: with the mark, mmengine warns
    and builds such a dict in the root registry, where mmdet's and mmpretrain's
    types (e.g. ``ImageClassifier``) are not found. Without it the dict is
    built in the config's ``default_scope``, as when the same config is
    inherited by its path.

    Args:
        cfg: A :class:`~mmengine.config.Config`, dict, list or tuple.

    Returns:
        The same object.
    """
    if isinstance(cfg, (Config, dict)):
        if isinstance(cfg, dict) and cfg.get('_scope_') == 'mmsparse':
            cfg.pop('_scope_')
        for value in cfg.values():
            drop_mmsparse_scope(value)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            drop_mmsparse_scope(value)
    return cfg


__all__ = ['DATASETS', 'HOOKS', 'METRICS', 'MODELS', 'TRANSFORMS', 'drop_mmsparse_scope']
