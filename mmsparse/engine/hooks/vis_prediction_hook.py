"""Draw predicted video instance masks over the frames of a few videos."""
import os
import os.path as osp
from typing import Optional, Sequence

import mmcv
import numpy as np
from mmengine.hooks import Hook

from mmsparse.registry import HOOKS
from mmsparse.utils.drawing import overlay_masks, save_frame_grid


@HOOKS.register_module()
class VISPredictionDrawHook(Hook):
    """Save one PNG per video: its frames with the predicted masks.

    Works with any video instance segmentation model whose test outputs are
    ``TrackDataSample`` s with ``pred_track_instances`` per frame (mmdet's
    ``Mask2FormerVideo``). Each instance keeps one colour across frames and is
    labelled ``class score``.

    Args:
        num_videos (int): Videos to draw (the first ones seen; rank 0 only).
            Defaults to 4.
        score_thr (float): Draw instances at or above this score.
            Defaults to 0.3.
        max_frames (int): Frames per video in the picture (evenly spaced).
            Defaults to 8.
        out_dir (str): Folder under the work dir. Defaults to
            'vis_predictions'.
        draw_in_val (bool): Also draw during validation. Defaults to False.
    """
    priority = 'LOW'

    def __init__(self,
                 num_videos: int = 4,
                 score_thr: float = 0.3,
                 max_frames: int = 8,
                 out_dir: str = 'vis_predictions',
                 draw_in_val: bool = False) -> None:
        if num_videos < 0:
            raise ValueError(f'num_videos must be >= 0, got {num_videos}')
        if not 0 <= score_thr <= 1:
            raise ValueError(f'score_thr must be in [0, 1], got {score_thr}')
        if max_frames < 1:
            raise ValueError(f'max_frames must be >= 1, got {max_frames}')
        self.num_videos = num_videos
        self.score_thr = score_thr
        self.max_frames = max_frames
        self.out_dir = out_dir
        self.draw_in_val = draw_in_val
        self._drawn = 0
        self.saved_files = []

    def before_test(self, runner) -> None:
        self._drawn = 0

    def before_val(self, runner) -> None:
        self._drawn = 0

    def after_test_iter(self, runner, batch_idx: int, data_batch=None,
                        outputs: Optional[Sequence] = None) -> None:
        self._draw(runner, outputs, 'test')

    def after_val_iter(self, runner, batch_idx: int, data_batch=None,
                       outputs: Optional[Sequence] = None) -> None:
        if self.draw_in_val:
            self._draw(runner, outputs, f'val_iter{runner.iter}')

    def _draw(self, runner, outputs, tag: str) -> None:
        if runner.rank != 0 or not outputs:
            return
        classes = runner.test_dataloader.dataset.metainfo.get('classes') \
            if tag == 'test' else \
            runner.val_dataloader.dataset.metainfo.get('classes')
        for track_sample in outputs:
            if self._drawn >= self.num_videos:
                return
            frames = list(track_sample.video_data_samples)
            if len(frames) > self.max_frames:
                pick = np.linspace(0, len(frames) - 1, self.max_frames)
                frames = [frames[int(round(i))] for i in pick]
            images, titles = [], []
            for sample in frames:
                image = mmcv.imread(sample.img_path, channel_order='rgb')
                pred = sample.pred_track_instances
                keep = (pred.scores >= self.score_thr).cpu().numpy()
                masks = pred.masks.cpu().numpy()[keep]
                if masks.shape[1:] != image.shape[:2]:
                    image = mmcv.imresize(image, masks.shape[1:][::-1]) \
                        if len(masks) else image
                ids = pred.instances_id.cpu().numpy()[keep]
                images.append(overlay_masks(image, masks, ids))
                labels = pred.labels.cpu().numpy()[keep]
                scores = pred.scores.cpu().numpy()[keep]
                names = [
                    f'{classes[lb] if classes else lb} {sc:.2f}'
                    for lb, sc in zip(labels, scores)
                ]
                titles.append(f"frame {sample.frame_id}: " +
                              (', '.join(names) if names else '-'))
            video = osp.basename(osp.dirname(frames[0].img_path))
            out_dir = osp.join(runner.work_dir, self.out_dir, tag)
            os.makedirs(out_dir, exist_ok=True)
            self.saved_files.append(
                save_frame_grid(
                    images, osp.join(out_dir, f'{video}.png'), titles,
                    f'{video}: predicted instances (score >= '
                    f'{self.score_thr})'))
            self._drawn += 1
