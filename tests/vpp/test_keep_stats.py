"""VPP keep statistics of an epoch (what VPPVisualizationHook logs)."""
from types import SimpleNamespace

import pytest
import torch

from mmsparse.vpp import FrameStats
from mmsparse.vpp.keep_stats import KeepStatistics, video_summary


def video(*counts):
    """FrameStats of a video of 8-patch frames, 3 blocks; frame 0 dense."""
    return [FrameStats(pruned=i > 0, counts=list(c), num_tokens=8)
            for i, c in enumerate(counts)]


def test_summary_of_two_videos():
    stats = KeepStatistics(num_layers=3)
    stats.add_video(video([8, 8, 8], [8, 4, 4]), fg_recall=[30, 40, 0.5, 1])
    stats.add_video(video([8, 8, 8], [8, 4, 2], [8, 2, 2]))
    scalars, msg = stats.summary('test')
    assert list(scalars) == [
        'test/vpp_pkr', 'test/vpp_keep', 'test/vpp_keep_block0',
        'test/vpp_keep_block1', 'test/vpp_keep_block2', 'test/vpp_fg_recall',
        'test/vpp_fg_selectivity'
    ]
    pkrs = [1, 2 / 3, 1, 7 / 12, 0.5]
    assert scalars['test/vpp_pkr'] == pytest.approx(sum(pkrs) / 5)
    assert scalars['test/vpp_keep'] == pytest.approx((0.5 + 0.25 + 0.25) / 3)
    assert scalars['test/vpp_keep_block0'] == 1.0
    assert scalars['test/vpp_keep_block1'] == pytest.approx(
        (1 + 0.5 + 1 + 0.5 + 0.25) / 5)
    # block means average to the PKR
    assert sum(scalars[f'test/vpp_keep_block{i}'] for i in range(3)) / 3 == \
        pytest.approx(scalars['test/vpp_pkr'])
    assert scalars['test/vpp_fg_recall'] == 0.75
    assert scalars['test/vpp_fg_selectivity'] == pytest.approx(0.75 / 0.5)
    assert msg.startswith('VPP test: 5 frames, 3 pruned; keep ratio of '
                          'pruned frames 0.333, mean PKR ')
    assert 'patches per block (pruned frames, mean) 8 3 3;' in msg
    assert 'object pixels kept 0.750 (1.50x the keep ratio' in msg


def test_summary_takes_all_reduced_sums():
    stats = KeepStatistics()
    assert stats.summary('val') is None          # nothing seen
    stats.add_video(video([8, 8, 8], [8, 4, 4]))
    scalars, msg = stats.summary('val', stats.sums * 2)  # two equal ranks
    assert list(scalars) == ['val/vpp_pkr', 'val/vpp_keep']  # no L, no fg
    assert msg.startswith('VPP val: 4 frames, 2 pruned; keep ratio of '
                          'pruned frames 0.500')
    assert stats.sums.dtype == torch.float64


def test_video_summary_line():
    assert video_summary(video([8, 8, 8], [8, 4, 4], [8, 4, 2])) == (
        'keep ratio per frame 1.00 0.50 0.25 | PKR 0.750 | patches per '
        'block (frame 1) 8 4 4')
    dense = [SimpleNamespace(pruned=False, keep_ratio=1.0, pkr=1.0,
                             counts=[8, 8])]
    assert video_summary(dense) == 'keep ratio per frame 1.00 | PKR 1.000'
