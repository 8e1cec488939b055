"""Object pixels kept by VPP (VPPVisualizationHook's foreground recall) and
the keep masks brought back to the frame's pixels."""
from types import SimpleNamespace

import mmcv
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData

from mmsparse.vpp.keep_stats import foreground_recall
from mmsparse.vpp.visualization import (evenly_spaced_frames,
                                        grid_mask_to_image, kept_patch_overlay)


class FakeBackbone:

    def __init__(self, masks):
        self.masks = torch.as_tensor(masks, dtype=torch.bool)

    def keep_masks(self):
        return self.masks


def frame(objects, with_gt=True):
    """A 32x64 frame (2x4 grid of 16-px patches), no resize, no padding."""
    s = DetDataSample(metainfo=dict(batch_input_shape=(32, 64),
                                    img_shape=(32, 64), ori_shape=(32, 64)))
    if with_gt:
        gt = InstanceData()
        gt.masks = BitmapMasks(np.stack(objects).astype(np.uint8), 32, 64)
        gt.labels = torch.zeros(len(objects), dtype=torch.long)
        s.gt_instances = gt
    return s


def test_counts_object_pixels_of_pruned_frames_only():
    a = np.zeros((32, 64), bool)
    a[0:16, 0:16] = True           # 256 px in patch (0, 0)
    b = np.zeros((32, 64), bool)
    b[16:32, 40:56] = True         # 128 px in patch (1, 2), 128 in (1, 3)
    keep = np.zeros((3, 2, 4), bool)
    keep[0] = True                 # frame 0: dense
    keep[1, 0, 0] = keep[1, 1, 2] = True    # 4 of 8 patches kept
    keep[2, 0, 1] = keep[2, 1, 0] = True    # 2 of 8, none on the objects
    stats = [SimpleNamespace(pruned=False, keep_ratio=1.0),
             SimpleNamespace(pruned=True, keep_ratio=0.5),
             SimpleNamespace(pruned=True, keep_ratio=0.25)]
    frames = [frame([a, b]), frame([a, b]), frame([a, b])]
    kept, total, keep_sum, n = foreground_recall(FakeBackbone(keep), stats,
                                                 frames)
    assert total == 2 * 512          # frame 0 (dense) is not counted
    assert kept == 256 + 128         # frame 1: all of a, half of b
    assert keep_sum == pytest.approx(0.75) and n == 2


def test_frames_without_ground_truth_are_skipped():
    keep = np.ones((2, 2, 4), bool)
    stats = [SimpleNamespace(pruned=False, keep_ratio=1.0),
             SimpleNamespace(pruned=True, keep_ratio=0.5)]
    frames = [frame(None, with_gt=False), frame(None, with_gt=False)]
    assert foreground_recall(FakeBackbone(keep), stats, frames) == \
        [0., 0., 0., 0.]


def test_grid_mask_follows_padding_and_resize():
    # 2x4 grid over a padded 32x64 input; the frame is the top-left 24x48,
    # resized from 48x96
    grid = np.array([[1, 0, 0, 0], [0, 0, 0, 1]], bool)
    out = grid_mask_to_image(grid, (32, 64), (24, 48), (48, 96))
    assert out.shape == (48, 96)
    assert out[:32, :32].all() and not out[:32, 32:].any()
    assert not out[32:, :].any()   # row 1 of the grid is half padding


@pytest.mark.parametrize('src,dst', [((24, 48), (48, 96)), ((23, 40), (360, 640)),
                                     ((368, 640), (720, 1280)),
                                     ((37, 53), (29, 101)), ((7, 3), (7, 3))])
def test_nearest_resize_matches_mmcv(src, dst):
    # the plain-numpy resize gives the pixels mmcv.imresize (cv2) gives
    rng = np.random.default_rng(0)
    img = rng.integers(0, 2, src, dtype=np.uint8)
    ref = mmcv.imresize(img, (dst[1], dst[0]), interpolation='nearest')
    out = grid_mask_to_image(img.astype(bool), src, src, dst)
    assert out.dtype == bool and np.array_equal(out, ref.astype(bool))


def test_overlay_darkens_pruned_pixels_only():
    image = np.full((2, 2, 3), 200, np.uint8)
    keep = np.array([[True, False], [False, True]])
    out = kept_patch_overlay(image, keep)
    assert out.dtype == np.uint8
    assert (out[keep] == 200).all() and (out[~keep] == 50).all()


def test_evenly_spaced_frames():
    assert evenly_spaced_frames(5, 8) == [0, 1, 2, 3, 4]
    assert evenly_spaced_frames(20, 4) == [0, 6, 13, 19]
    assert evenly_spaced_frames(3, 1) == [0]
