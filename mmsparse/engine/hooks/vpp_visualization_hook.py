"""Log VPP keep ratios per frame and draw kept patches over video frames."""
import os
import os.path as osp
from typing import List, Optional, Sequence

import mmcv
import numpy as np
import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmsparse.registry import HOOKS
from mmsparse.utils.drawing import save_frame_grid


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


def grid_mask_to_image(mask: np.ndarray, batch_shape: Sequence[int],
                       img_shape: Sequence[int],
                       ori_shape: Sequence[int]) -> np.ndarray:
    """Patch-grid keep mask -> pixel mask of the original frame.

    The grid covers the padded network input (``batch_shape``); the frame
    occupies its top-left ``img_shape`` and was resized from ``ori_shape``.
    """
    h, w = mask.shape
    ph, pw = batch_shape[0] // h, batch_shape[1] // w
    pixels = np.kron(mask.astype(np.uint8), np.ones((ph, pw), np.uint8))
    pixels = pixels[:img_shape[0], :img_shape[1]]
    pixels = mmcv.imresize(
        pixels, (int(ori_shape[1]), int(ori_shape[0])),
        interpolation='nearest')
    return pixels.astype(bool)


def foreground_recall(backbone, stats, frames) -> List[float]:
    """Object pixels kept in the pruned frames of one video.

    Args:
        backbone: The VPP backbone after its forward over the video.
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


@HOOKS.register_module()
class VPPVisualizationHook(Hook):
    """Per-frame keep ratios in the log and kept-patch PNGs (VPP models).

    After every test (and validation) video it reads the keep statistics
    the :class:`~mmsparse.models.VPPBackbone` stored in its last forward:

    * the first ``num_videos`` videos (rank 0) get a log line with the keep
      ratio of each frame (frame 0 dense, 1.00) and a PNG
      ``<work_dir>/<out_dir>/<test|val_iterN>/<video>.png`` of up to
      ``max_frames`` frames with the pruned patches darkened;
    * at the end of the epoch the mean PKR over all frames and the mean
      keep ratio of the pruned frames (summed over ranks) are logged and
      written as ``test/vpp_pkr``, ``test/vpp_keep`` (``val/...``) scalars;
      so is the share of patches each block processes, averaged over all
      frames (``test/vpp_keep_block{i}``; their mean is ``vpp_pkr``, the
      paper's PKR), with the per-block patch counts of the pruned frames
      in the log line;
    * where the samples carry ground-truth masks (local evaluation), the
      **foreground recall** of the pruned frames: the fraction of object
      pixels whose patch was kept (``test/vpp_fg_recall``), and its ratio
      to the keep ratio (``test/vpp_fg_selectivity``: 1 = no better than
      random patches, 1 / keep = every object pixel kept).

    Args:
        num_videos (int): Videos logged in detail and drawn. Defaults to 4.
        max_frames (int): Frames per picture (evenly spaced, frame 0
            first). Defaults to 8.
        out_dir (str): Folder under the work dir. Defaults to
            'vpp_kept_patches'.
        draw_in_val (bool): Also draw during validation. Defaults to False.
    """
    priority = 'NORMAL'

    def __init__(self,
                 num_videos: int = 4,
                 max_frames: int = 8,
                 out_dir: str = 'vpp_kept_patches',
                 draw_in_val: bool = False) -> None:
        if num_videos < 0:
            raise ValueError(f'VPPVisualizationHook: num_videos must be >= 0, '
                             f'got {num_videos}')
        if max_frames < 1:
            raise ValueError(f'VPPVisualizationHook: max_frames must be >= 1, '
                             f'got {max_frames}')
        self.num_videos = num_videos
        self.max_frames = max_frames
        self.out_dir = out_dir
        self.draw_in_val = draw_in_val
        self.saved_files: List[str] = []
        self._reset(0)

    def _reset(self, num_layers: int) -> None:
        self._seen = 0
        self._num_layers = num_layers
        # frames, sum of PKR, pruned frames, sum of their keep ratios,
        # object pixels of pruned frames kept, object pixels of pruned
        # frames, sum of the keep ratios of the pruned frames with objects,
        # number of those frames; then per block: sum over all frames of
        # the share of patches processed, sum over the pruned frames of the
        # patches processed
        self._sums = torch.zeros(8 + 2 * num_layers, dtype=torch.float64)

    def _reset_for(self, runner) -> None:
        backbone = self._backbone(runner)
        pruner = getattr(backbone, 'pruner', None)
        self._reset(getattr(pruner, 'num_layers', 0))

    @staticmethod
    def _backbone(runner):
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        backbone = getattr(model, 'backbone', None)
        if backbone is None or not hasattr(backbone, 'keep_masks'):
            return None
        return backbone

    def before_val(self, runner) -> None:
        self._reset_for(runner)

    def before_test(self, runner) -> None:
        self._reset_for(runner)

    def after_val_iter(self, runner, batch_idx: int, data_batch=None,
                       outputs: Optional[Sequence] = None) -> None:
        self._record(runner, outputs, f'val_iter{runner.iter}',
                     self.draw_in_val)

    def after_test_iter(self, runner, batch_idx: int, data_batch=None,
                        outputs: Optional[Sequence] = None) -> None:
        self._record(runner, outputs, 'test', True)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._summary(runner, 'val')

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._summary(runner, 'test')

    # ------------------------------------------------------------------
    def _record(self, runner, outputs, tag: str, draw: bool) -> None:
        backbone = self._backbone(runner)
        if backbone is None or not backbone.last_stats:
            return
        stats = backbone.last_stats
        keep = [s.keep_ratio for s in stats]
        pruned = [s.keep_ratio for s in stats if s.pruned]
        self._sums[:4] += torch.tensor([
            len(stats), sum(s.pkr for s in stats), len(pruned), sum(pruned)
        ], dtype=torch.float64)
        L = self._num_layers
        if L and all(len(s.counts) == L for s in stats):
            counts = torch.tensor([s.counts for s in stats],
                                  dtype=torch.float64)
            share = counts / torch.tensor([[s.num_tokens] for s in stats],
                                          dtype=torch.float64)
            self._sums[8:8 + L] += share.sum(0)
            is_pruned = torch.tensor([s.pruned for s in stats])
            self._sums[8 + L:] += counts[is_pruned].sum(0)
        if outputs:
            self._sums[4:8] += torch.tensor(
                foreground_recall(backbone, stats,
                                  list(outputs[0].video_data_samples)),
                dtype=torch.float64)
        if runner.rank != 0 or self._seen >= self.num_videos or not outputs:
            return
        self._seen += 1
        frames = list(outputs[0].video_data_samples)
        video = osp.basename(osp.dirname(frames[0].img_path)) \
            if frames and 'img_path' in frames[0] else f'video{self._seen}'
        pkr = sum(s.pkr for s in stats) / len(stats)
        blocks = next((s.counts for s in stats if s.pruned), None)
        runner.logger.info(
            f'VPP {tag} {video}: keep ratio per frame ' +
            ' '.join(f'{k:.2f}' for k in keep) + f' | PKR {pkr:.3f}' +
            ('' if blocks is None else ' | patches per block (frame 1) ' +
             ' '.join(str(c) for c in blocks)))
        if draw and len(frames) == len(stats):
            self._draw(runner, backbone, frames, stats, video, tag)

    def _draw(self, runner, backbone, frames, stats, video, tag) -> None:
        masks = backbone.keep_masks().numpy()
        pick = range(len(frames))
        if len(frames) > self.max_frames:
            pick = sorted({
                int(round(i))
                for i in np.linspace(0, len(frames) - 1, self.max_frames)
            })
        images, titles = [], []
        for t in pick:
            sample = frames[t]
            image = mmcv.imread(sample.img_path, channel_order='rgb')
            keep = grid_mask_to_image(
                masks[t], sample.batch_input_shape, sample.img_shape,
                image.shape[:2])
            images.append(kept_patch_overlay(image, keep))
            state = f'keep {stats[t].keep_ratio:.0%}' if stats[t].pruned \
                else 'dense (prior only)'
            titles.append(f'frame {sample.get("frame_id", t)}: {state}')
        out_dir = osp.join(runner.work_dir, self.out_dir, tag)
        os.makedirs(out_dir, exist_ok=True)
        self.saved_files.append(
            save_frame_grid(images, osp.join(out_dir, f'{video}.png'),
                            titles, f'{video}: kept patches (VPP)'))

    def _summary(self, runner, mode: str) -> None:
        sums = self._sums.clone()
        all_reduce(sums)
        frames, pkr_sum, pruned, keep_sum, fg_kept, fg, fg_keep_sum, \
            fg_frames = sums[:8].tolist()
        if frames == 0:
            return
        pkr = pkr_sum / frames
        keep = keep_sum / pruned if pruned else 1.0
        runner.message_hub.update_scalar(f'{mode}/vpp_pkr', pkr)
        runner.message_hub.update_scalar(f'{mode}/vpp_keep', keep)
        msg = (f'VPP {mode}: {int(frames)} frames, {int(pruned)} pruned; '
               f'keep ratio of pruned frames {keep:.3f}, mean PKR {pkr:.3f}')
        L = self._num_layers
        if L:
            share = (sums[8:8 + L] / frames).tolist()
            for i, value in enumerate(share):
                runner.message_hub.update_scalar(f'{mode}/vpp_keep_block{i}',
                                                 value)
            msg += ('; share of patches per block (all frames) ' +
                    ' '.join(f'{v:.3f}' for v in share))
            if pruned:
                counts = (sums[8 + L:] / pruned).tolist()
                msg += ('; patches per block (pruned frames, mean) ' +
                        ' '.join(f'{v:.0f}' for v in counts))
        if fg > 0:
            recall = fg_kept / fg
            selectivity = recall / (fg_keep_sum / fg_frames)
            runner.message_hub.update_scalar(f'{mode}/vpp_fg_recall', recall)
            runner.message_hub.update_scalar(f'{mode}/vpp_fg_selectivity',
                                             selectivity)
            msg += (f'; object pixels kept {recall:.3f} '
                    f'({selectivity:.2f}x the keep ratio; 1.00x = random)')
        runner.logger.info(msg)
