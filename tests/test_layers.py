"""The import rules of the design notes, checked on the source (AST, no imports run).

- ``mmsparse/{art,p3b,vpp}`` are plain PyTorch: they import torch, numpy, the
  standard library and each other, never OpenMMLab (mmengine, mmcv, mmdet,
  mmpretrain) nor ``mmsparse.models`` / ``mmsparse.engine``.
- Nothing in ``mmsparse/`` imports ``tools``, ``projects`` or ``tests``.
"""
import ast
import os
import os.path as osp

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PACKAGE = osp.join(ROOT, 'mmsparse')
METHODS = ('art', 'p3b', 'vpp')
OPENMMLAB = ('mmengine', 'mmcv', 'mmdet', 'mmpretrain')
ADAPTERS = ('mmsparse.models', 'mmsparse.engine', 'mmsparse.datasets',
            'mmsparse.evaluation', 'mmsparse.registry')


def imported_modules(path, package=None):
    """Absolute names of every module ``path`` imports (relative imports
    resolved against its package, by default the one of its folder)."""
    package = package or osp.relpath(osp.dirname(path), ROOT).replace(os.sep, '.')
    names = []
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')
                base = base[:len(base) - node.level + 1]
                names.append('.'.join(base + ([node.module] if node.module else [])))
            else:
                names.append(node.module)
    return names


def python_files(folder):
    for dirpath, _, files in os.walk(folder):
        for name in files:
            if name.endswith('.py'):
                yield osp.join(dirpath, name)


def _hits(path, forbidden, package=None):
    return [m for m in imported_modules(path, package)
            if any(m == f or m.startswith(f + '.') for f in forbidden)]


@pytest.mark.parametrize('method', METHODS)
def test_method_folders_are_plain_torch(method):
    offending = {}
    for path in python_files(osp.join(PACKAGE, method)):
        hits = _hits(path, OPENMMLAB + ADAPTERS)
        if hits:
            offending[osp.relpath(path, ROOT)] = hits
    assert not offending, f'mmsparse/{method} must not import OpenMMLab or adapters: {offending}'


def test_package_does_not_import_scripts():
    offending = {}
    for path in python_files(PACKAGE):
        hits = _hits(path, ('tools', 'projects', 'tests'))
        if hits:
            offending[osp.relpath(path, ROOT)] = hits
    assert not offending, offending


def test_the_scan_sees_relative_and_absolute_imports(tmp_path):
    # A module of mmsparse/vpp written like this would be caught: the check can fail.
    probe = tmp_path / 'probe.py'
    probe.write_text('from ..engine import hooks\nimport mmengine.config\n'
                     'from mmdet.registry import MODELS\nfrom .selectors import x\n'
                     'def f():\n    from mmsparse.models import backbones\n')
    assert _hits(str(probe), OPENMMLAB + ADAPTERS, 'mmsparse.vpp') == [
        'mmsparse.engine', 'mmengine.config', 'mmdet.registry', 'mmsparse.models']
