import shutil

import pytest

from mmsparse.datasets.toy_ytvis import make_toy_ytvis
from mmsparse.datasets.ytvis_convert import convert_youtubevis


@pytest.fixture(scope='session')
def toy_root(tmp_path_factory):
    """A small raw toy set (10 train videos x 4 frames, 2 valid videos); do not modify."""
    root = tmp_path_factory.mktemp('toy_ytvis') / 'toy'
    make_toy_ytvis(str(root), num_videos=10, num_frames=4, seed=3, num_valid_videos=2)
    return root


@pytest.fixture(scope='session')
def toy_converted(toy_root, tmp_path_factory):
    """CocoVID files of ``toy_root`` with a 0.3 held-out split."""
    out = tmp_path_factory.mktemp('toy_ann')
    written = convert_youtubevis(str(toy_root), str(out), heldout_ratio=0.3, seed=0, log=None)
    return written


@pytest.fixture
def toy_copy(toy_root, tmp_path):
    """A private, modifiable copy of the raw toy set."""
    dst = tmp_path / 'toy'
    shutil.copytree(toy_root, dst)
    return dst
