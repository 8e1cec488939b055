"""Kept patches of VPP drawn over the video frames (plain numpy).

The keep masks of a VPP forward (``VPPBackbone.keep_masks()``) live on the
patch grid of the padded network input; these helpers bring a mask back to
the pixels of the original frame and darken the pruned patches.
"""
from typing import List, Sequence

import numpy as np


def nearest_indices(src: int, dst: int) -> np.ndarray:
    """Source index of every target index of a nearest-neighbour resize.

    The same rule as OpenCV's ``INTER_NEAREST`` (``floor(i * src / dst)``,
    with the scale computed as ``1 / (dst / src)`` in double precision), so
    the result equals ``mmcv.imresize(..., interpolation='nearest')``.

    Args:
        src (int): Length of the source axis.
        dst (int): Length of the target axis.

    Returns:
        np.ndarray: (dst,) int64 indices into the source axis.
    """
    scale = 1.0 / (dst / src)
    index = np.floor(np.arange(dst) * scale).astype(np.int64)
    return np.minimum(index, src - 1)


def grid_mask_to_image(mask: np.ndarray, batch_shape: Sequence[int],
                       img_shape: Sequence[int],
                       ori_shape: Sequence[int]) -> np.ndarray:
    """Patch-grid keep mask -> pixel mask of the original frame.

    The grid covers the padded network input (``batch_shape``); the frame
    occupies its top-left ``img_shape`` and was resized from ``ori_shape``
    (nearest-neighbour back to it).

    Args:
        mask (np.ndarray): (h, w) bool keep mask on the patch grid.
        batch_shape (Sequence[int]): (H, W) of the padded network input.
        img_shape (Sequence[int]): (H, W) of the resized frame in it.
        ori_shape (Sequence[int]): (H, W) of the original frame.

    Returns:
        np.ndarray: (ori_H, ori_W) bool, True where the patch was kept.
    """
    h, w = mask.shape
    ph, pw = batch_shape[0] // h, batch_shape[1] // w
    pixels = np.kron(mask.astype(np.uint8), np.ones((ph, pw), np.uint8))
    pixels = pixels[:img_shape[0], :img_shape[1]]
    rows = nearest_indices(pixels.shape[0], int(ori_shape[0]))
    cols = nearest_indices(pixels.shape[1], int(ori_shape[1]))
    return pixels[rows[:, None], cols[None, :]].astype(bool)


def kept_patch_overlay(image: np.ndarray,
                       keep: np.ndarray,
                       dim: float = 0.25) -> np.ndarray:
    """Darken the pruned patches of an RGB frame.

    Args:
        image (np.ndarray): (H, W, 3) uint8 RGB frame.
        keep (np.ndarray): (H, W) bool, True where the patch was kept.
        dim (float): Brightness left to pruned pixels. Defaults to 0.25.

    Returns:
        np.ndarray: (H, W, 3) uint8.
    """
    out = image.astype(np.float32)
    out[~keep] *= dim
    return out.clip(0, 255).astype(np.uint8)


def evenly_spaced_frames(num_frames: int, max_frames: int) -> List[int]:
    """Indices of at most ``max_frames`` frames spread over a video.

    Args:
        num_frames (int): Frames in the video.
        max_frames (int): Frames wanted (>= 1).

    Returns:
        list[int]: Sorted indices, frame 0 first; all frames when the video
        is not longer than ``max_frames``.
    """
    if num_frames <= max_frames:
        return list(range(num_frames))
    return sorted({
        int(round(i))
        for i in np.linspace(0, num_frames - 1, max_frames)
    })
