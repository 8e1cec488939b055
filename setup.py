"""Build mmsparse (the metadata is in setup.cfg).

A built wheel also carries ``configs/``, ``tools/`` and ``model-index.yml``
under ``mmsparse/.mim/``, the layout that OpenMMLab's ``mim`` (``mim train
mmsparse CONFIG``) and mmengine's ``package::path`` config names
(``_base_ = 'mmsparse::toy/...'``) read from an installed package. An
editable install (``pip install -e .``) gets no ``.mim``: configs and tools
are used from the clone.
"""
import os
import os.path as osp
import shutil
from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = osp.dirname(osp.abspath(__file__))
MIM_FILES = ('configs', 'tools', 'model-index.yml')


def copy_mim_files(package_dir: str) -> None:
    """Copy :data:`MIM_FILES` into ``package_dir/.mim`` (replacing old copies)."""
    mim_dir = osp.join(package_dir, '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    for name in MIM_FILES:
        src, dst = osp.join(ROOT, name), osp.join(mim_dir, name)
        if not osp.exists(src):
            raise FileNotFoundError(f'setup.py: {src} is missing (it goes into mmsparse/.mim)')
        if osp.isdir(dst):
            shutil.rmtree(dst)
        if osp.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        else:
            shutil.copyfile(src, dst)


class BuildPyWithMim(build_py):
    """``build_py`` that adds ``mmsparse/.mim`` to the built package."""

    def run(self) -> None:
        super().run()
        if not getattr(self, 'editable_mode', False):
            copy_mim_files(osp.join(self.build_lib, 'mmsparse'))


setup(cmdclass={'build_py': BuildPyWithMim})
