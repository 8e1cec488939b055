"""install_requires holds ranges (an existing OpenMMLab environment keeps its torch/mmcv),
the exact pins of requirements/ lie inside them, and the installed environment satisfies them.

`make install-check` (run by .ci/run) also does `pip install --no-deps -e .` into .venv
followed by `pip check`.
"""
import configparser
import glob
import importlib.metadata as metadata
import os.path as osp
import re
import subprocess
import sys

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _install_requires():
    cfg = configparser.ConfigParser()
    cfg.read(osp.join(ROOT, 'setup.cfg'))
    lines = cfg['options']['install_requires'].strip().splitlines()
    return [Requirement(line) for line in lines if line.strip()]


def _pins():
    """Exact pins of `make env`: requirements/*.txt, and mmcv in the Makefile."""
    with open(osp.join(ROOT, 'Makefile')) as f:
        pins = {'mmcv': re.search(r'mmcv==([\w.]+)', f.read()).group(1)}
    for path in glob.glob(osp.join(ROOT, 'requirements', '*.txt')):
        with open(path) as f:
            for line in f:
                line = line.split('#')[0].strip()
                if '==' in line:
                    req = Requirement(line)
                    pins[canonicalize_name(req.name)] = next(iter(req.specifier)).version
    return pins


def test_install_requires_are_ranges_not_pins():
    reqs = _install_requires()
    assert {canonicalize_name(r.name) for r in reqs} >= {
        'torch', 'mmcv', 'mmengine', 'mmdet', 'mmpretrain', 'pycocotools'}
    pinned = [str(r) for r in reqs if any(s.operator in ('==', '===') for s in r.specifier)]
    assert not pinned, f'exact pins belong in requirements/, not install_requires: {pinned}'
    # torch/torchvision installs are the user's: no requirement may force a newer torch
    assert 'torchvision' not in {canonicalize_name(r.name) for r in reqs}


def test_pinned_stack_is_inside_the_ranges():
    pins = _pins()
    for req in _install_requires():
        name = canonicalize_name(req.name)
        if name in pins:
            assert req.specifier.contains(pins[name], prereleases=True), (req, pins[name])
    assert {'torch', 'mmcv', 'mmengine', 'mmdet', 'mmpretrain'} <= set(pins)


def test_installed_versions_satisfy_the_ranges():
    for req in _install_requires():
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            pytest.fail(f'{req.name} is not installed')
        assert req.specifier.contains(version, prereleases=True), (str(req), version)


def test_pip_check():
    proc = subprocess.run([sys.executable, '-m', 'pip', 'check'], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
