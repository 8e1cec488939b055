"""Drawing helpers: masks over video frames, saved as PNG grids."""
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np

# A fixed palette so the same instance id keeps its colour across frames.
_PALETTE = np.array(
    [[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200],
     [245, 130, 48], [145, 30, 180], [70, 240, 240], [240, 50, 230],
     [210, 245, 60], [250, 190, 212], [0, 128, 128], [220, 190, 255]],
    dtype=np.float32)


def instance_color(instance_id: int) -> np.ndarray:
    """RGB colour (float32, 0..255) of an instance id."""
    return _PALETTE[int(instance_id) % len(_PALETTE)]


def overlay_masks(image: np.ndarray,
                  masks: np.ndarray,
                  ids: Sequence[int],
                  alpha: float = 0.5) -> np.ndarray:
    """Blend boolean masks onto an RGB image.

    Args:
        image (np.ndarray): (H, W, 3) uint8 RGB.
        masks (np.ndarray): (n, H, W) bool.
        ids (Sequence[int]): Instance id of each mask (picks the colour).
        alpha (float): Mask opacity. Defaults to 0.5.

    Returns:
        np.ndarray: (H, W, 3) uint8.
    """
    out = image.astype(np.float32).copy()
    for mask, inst in zip(masks, ids):
        mask = mask.astype(bool)
        out[mask] = (1 - alpha) * out[mask] + alpha * instance_color(inst)
    return out.clip(0, 255).astype(np.uint8)


def save_frame_grid(frames: List[np.ndarray],
                    out_file: str,
                    titles: Optional[List[str]] = None,
                    suptitle: Optional[str] = None,
                    max_cols: int = 4) -> str:
    """Save RGB frames side by side (wrapping rows) as one PNG.

    Args:
        frames (list[np.ndarray]): (H, W, 3) uint8 RGB frames.
        out_file (str): PNG path.
        titles (list[str], optional): A title per frame. Defaults to None.
        suptitle (str, optional): Figure title. Defaults to None.
        max_cols (int): Frames per row. Defaults to 4.

    Returns:
        str: ``out_file``.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    n = len(frames)
    cols = min(max_cols, n)
    rows = (n + cols - 1) // cols
    h, w = frames[0].shape[:2]
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.2 * cols, (3.2 * h / w + 0.35) * rows + 0.5),
        squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis('off')
        if i < n:
            ax.imshow(frames[i])
            if titles:
                ax.set_title(titles[i], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    fig.savefig(out_file, dpi=100)
    plt.close(fig)
    return osp.abspath(out_file)
