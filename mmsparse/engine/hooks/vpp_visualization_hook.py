"""Log VPP keep ratios per frame and draw kept patches over video frames.

The statistics and the drawing live in :mod:`mmsparse.vpp.keep_stats` and
:mod:`mmsparse.vpp.visualization`; this hook reads the backbone's records
after every video, logs and saves.
"""
import os
import os.path as osp
from typing import List, Optional, Sequence

import mmcv
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmsparse.registry import HOOKS
from mmsparse.utils.drawing import save_frame_grid
from mmsparse.vpp.keep_stats import (KeepStatistics, foreground_recall,
                                     video_summary)
from mmsparse.vpp.visualization import (evenly_spaced_frames,
                                        grid_mask_to_image, kept_patch_overlay)


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
        self._stats = KeepStatistics(num_layers)

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
        frames = list(outputs[0].video_data_samples) if outputs else []
        self._stats.add_video(
            stats,
            foreground_recall(backbone, stats, frames) if outputs else None)
        if runner.rank != 0 or self._seen >= self.num_videos or not outputs:
            return
        self._seen += 1
        video = osp.basename(osp.dirname(frames[0].img_path)) \
            if frames and 'img_path' in frames[0] else f'video{self._seen}'
        runner.logger.info(f'VPP {tag} {video}: ' + video_summary(stats))
        if draw and len(frames) == len(stats):
            self._draw(runner, backbone, frames, stats, video, tag)

    def _draw(self, runner, backbone, frames, stats, video, tag) -> None:
        masks = backbone.keep_masks().numpy()
        images, titles = [], []
        for t in evenly_spaced_frames(len(frames), self.max_frames):
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
        sums = self._stats.sums.clone()
        all_reduce(sums)
        result = self._stats.summary(mode, sums)
        if result is None:
            return
        scalars, msg = result
        for key, value in scalars.items():
            runner.message_hub.update_scalar(key, value)
        runner.logger.info(msg)
