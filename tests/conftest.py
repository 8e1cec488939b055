"""Shared fixtures: the repository root as cwd, and a small toy YouTube-VIS set."""
import os

import pytest
from vis_helpers import ROOT


@pytest.fixture(autouse=True, scope='session')
def _repo_root_cwd():
    """Configs and tools are addressed relative to the repository root."""
    old = os.getcwd()
    os.chdir(ROOT)
    yield
    os.chdir(old)


@pytest.fixture(scope='session')
def toy_ytvis_root(tmp_path_factory):
    """A small toy YouTube-VIS 2021 set (raw + CocoVID with a held-out split).

    10 videos of 4 frames at 320x192; 3 held-out videos keep ground truth.
    Returns the dataset root (str) to use as ``data_root``.
    """
    from mmsparse.datasets.toy_ytvis import make_toy_ytvis
    from mmsparse.datasets.ytvis_convert import convert_youtubevis
    root = str(tmp_path_factory.mktemp('toy_ytvis21'))
    make_toy_ytvis(root, num_videos=10, num_frames=4, seed=1)
    convert_youtubevis(root, version='2021', heldout_ratio=0.3, seed=0,
                       log=None)
    return root + '/'
