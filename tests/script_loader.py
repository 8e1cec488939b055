"""Load a script of ``projects/`` or ``tools/`` as a module in the tests
(importable as ``script_loader``, like ``vis_helpers``)."""
import importlib.util
import os.path as osp
import re
import sys

from vis_helpers import ROOT


def script_module_name(path: str) -> str:
    """The ``sys.modules`` name of the script at absolute ``path``.

    Stable (the same file always gets the same name) and unique per file: its
    path relative to the repository root (the absolute path for a file
    outside it), ``/`` as ``__`` and other non-identifier characters as
    ``_``, e.g. ``_script__projects__vpp__run_toy_comparison``. No dots, so
    pickle finds the module without importing parent packages.
    """
    real = osp.realpath(path)
    root = osp.realpath(ROOT)
    rel = osp.relpath(real, root) if real.startswith(root + osp.sep) else real
    rel = osp.splitext(rel)[0].strip(osp.sep)
    return '_script__' + '__'.join(
        re.sub(r'\W', '_', part) for part in rel.split(osp.sep))


def load_script(path: str):
    """Execute the script at ``path`` and return it as a module.

    Args:
        path (str): The script, relative to the repository root (not to the
            working directory) or absolute.

    Returns:
        module: The executed script (``__name__`` is not ``'__main__'``, so
        its command-line entry point does not run). It is registered in
        ``sys.modules`` under :func:`script_module_name` before it runs, so
        its dataclasses, pickling and ``fork`` workers find it. Every call
        executes the script anew and replaces that entry: objects to pickle
        must come from the latest load of the script.

    Raises:
        FileNotFoundError: ``path`` is not a file.
    """
    full = path if osp.isabs(path) else osp.join(ROOT, path)
    if not osp.isfile(full):
        raise FileNotFoundError(
            f'load_script: no script file {path!r} (looked at {full}; relative '
            f'paths are taken from the repository root {ROOT})')
    name = script_module_name(full)
    spec = importlib.util.spec_from_file_location(name, full)
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(name)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        if previous is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = previous
        raise
    return module
