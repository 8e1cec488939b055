"""What VPP kept over an evaluation epoch: keep ratios, PKR, patches per
block and the share of object pixels kept (plain torch / numpy).

:class:`KeepStatistics` sums the per-frame records
(:class:`~mmsparse.vpp.pruner.FrameStats`) of every video into one float64
tensor, so that a distributed run all-reduces that tensor once and every
rank summarises the same totals.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .visualization import grid_mask_to_image


def foreground_recall(backbone, stats, frames) -> List[float]:
    """Object pixels kept in the pruned frames of one video.

    Args:
        backbone: The VPP backbone after its forward over the video (only
            its ``keep_masks()`` is used).
        stats (list): Its ``last_stats`` (one entry per frame).
        frames (list): The video's ``DetDataSample`` per frame; frames
            without ground-truth masks are skipped.

    Returns:
        list: [object pixels kept, object pixels, sum of the keep ratios
        of the pruned frames with objects, number of those frames].
    """
    kept_px = total_px = keep_sum = counted = 0.
    masks = backbone.keep_masks()
    if masks is None or len(frames) != len(stats):
        return [0., 0., 0., 0.]
    masks = masks.numpy()
    for t, (sample, stat) in enumerate(zip(frames, stats)):
        gt = sample.get('gt_instances', None)
        if not stat.pruned or gt is None or 'masks' not in gt \
                or len(gt) == 0:
            continue
        gt_masks = gt.masks
        gt_masks = gt_masks.to_ndarray() if hasattr(gt_masks, 'to_ndarray') \
            else np.asarray(gt_masks)
        fg = gt_masks.astype(bool).any(axis=0)
        if not fg.any():
            continue
        keep = grid_mask_to_image(masks[t], sample.batch_input_shape,
                                  sample.img_shape, fg.shape)
        kept_px += float((keep & fg).sum())
        total_px += float(fg.sum())
        keep_sum += stat.keep_ratio
        counted += 1
    return [kept_px, total_px, keep_sum, counted]


def video_summary(stats) -> str:
    """One video's keep ratio per frame, PKR and patches per block.

    Args:
        stats (list): The backbone's ``last_stats`` of the video.

    Returns:
        str: ``'keep ratio per frame 1.00 0.50 ... | PKR 0.604'``, then
        ``' | patches per block (frame 1) 240 120 ...'`` (the first pruned
        frame) when a frame was pruned.
    """
    pkr = sum(s.pkr for s in stats) / len(stats)
    blocks = next((s.counts for s in stats if s.pruned), None)
    return ('keep ratio per frame ' +
            ' '.join(f'{s.keep_ratio:.2f}' for s in stats) +
            f' | PKR {pkr:.3f}' +
            ('' if blocks is None else ' | patches per block (frame 1) ' +
             ' '.join(str(c) for c in blocks)))


class KeepStatistics:
    """Keep statistics of VPP summed over the videos of an epoch.

    ``sums`` holds, in this order: frames, sum of the PKR, pruned frames,
    sum of their keep ratios, object pixels of pruned frames kept, object
    pixels of pruned frames, sum of the keep ratios of the pruned frames
    with objects, number of those frames; then per block: sum over all
    frames of the share of patches processed, sum over the pruned frames
    of the patches processed.

    Args:
        num_layers (int): Blocks of the pruned ViT (0: no per-block
            numbers). Defaults to 0.
    """

    def __init__(self, num_layers: int = 0) -> None:
        self.num_layers = num_layers
        self.sums = torch.zeros(8 + 2 * num_layers, dtype=torch.float64)

    def add_video(self,
                  stats,
                  fg_recall: Optional[Sequence[float]] = None) -> None:
        """Add one video.

        Args:
            stats (list): The backbone's ``last_stats`` of the video.
            fg_recall (Sequence[float], optional): Its
                :func:`foreground_recall`. Defaults to None (not counted).
        """
        pruned = [s.keep_ratio for s in stats if s.pruned]
        self.sums[:4] += torch.tensor([
            len(stats), sum(s.pkr for s in stats), len(pruned), sum(pruned)
        ], dtype=torch.float64)
        L = self.num_layers
        if L and all(len(s.counts) == L for s in stats):
            counts = torch.tensor([s.counts for s in stats],
                                  dtype=torch.float64)
            share = counts / torch.tensor([[s.num_tokens] for s in stats],
                                          dtype=torch.float64)
            self.sums[8:8 + L] += share.sum(0)
            is_pruned = torch.tensor([s.pruned for s in stats])
            self.sums[8 + L:] += counts[is_pruned].sum(0)
        if fg_recall is not None:
            self.sums[4:8] += torch.tensor(fg_recall, dtype=torch.float64)

    def summary(
        self,
        mode: str,
        sums: Optional[torch.Tensor] = None
    ) -> Optional[Tuple[Dict[str, float], str]]:
        """Scalars and the log line of the epoch.

        Args:
            mode (str): Prefix of the scalar names ('test' or 'val').
            sums (Tensor, optional): Totals to summarise, e.g. ``sums``
                all-reduced over the ranks. Defaults to None (``sums``).

        Returns:
            tuple | None: ``({'<mode>/vpp_pkr': ..., '<mode>/vpp_keep': ...,
            '<mode>/vpp_keep_block<i>': ..., '<mode>/vpp_fg_recall': ...,
            '<mode>/vpp_fg_selectivity': ...}, message)``; the per-block
            scalars only with ``num_layers``, the foreground ones only where
            object pixels were seen. None when no frame was added.
        """
        sums = self.sums if sums is None else sums
        frames, pkr_sum, pruned, keep_sum, fg_kept, fg, fg_keep_sum, \
            fg_frames = sums[:8].tolist()
        if frames == 0:
            return None
        pkr = pkr_sum / frames
        keep = keep_sum / pruned if pruned else 1.0
        scalars = {f'{mode}/vpp_pkr': pkr, f'{mode}/vpp_keep': keep}
        msg = (f'VPP {mode}: {int(frames)} frames, {int(pruned)} pruned; '
               f'keep ratio of pruned frames {keep:.3f}, mean PKR {pkr:.3f}')
        L = self.num_layers
        if L:
            share = (sums[8:8 + L] / frames).tolist()
            for i, value in enumerate(share):
                scalars[f'{mode}/vpp_keep_block{i}'] = value
            msg += ('; share of patches per block (all frames) ' +
                    ' '.join(f'{v:.3f}' for v in share))
            if pruned:
                counts = (sums[8 + L:] / pruned).tolist()
                msg += ('; patches per block (pruned frames, mean) ' +
                        ' '.join(f'{v:.0f}' for v in counts))
        if fg > 0:
            recall = fg_kept / fg
            selectivity = recall / (fg_keep_sum / fg_frames)
            scalars[f'{mode}/vpp_fg_recall'] = recall
            scalars[f'{mode}/vpp_fg_selectivity'] = selectivity
            msg += (f'; object pixels kept {recall:.3f} '
                    f'({selectivity:.2f}x the keep ratio; 1.00x = random)')
        return scalars, msg
