"""Mask2Former (video) with a VPP backbone: adds the backbone's losses."""
from typing import List, Optional

import torch
from mmdet.models.vis.mask2former_vis import Mask2FormerVideo
from mmdet.structures import TrackSampleList
from torch import Tensor

from mmsparse.registry import MODELS
from mmsparse.vpp import CLIP_ORDERS, clip_run_order
from mmsparse.vpp.keep_set import KeepSetFeatures


@MODELS.register_module()
class VPPMask2FormerVideo(Mask2FormerVideo):
    """``Mask2FormerVideo`` whose backbone is a :class:`VPPBackbone`.

    A backbone cannot return a loss to ``Mask2FormerVideo.loss``. This
    subclass changes three things and nothing else:

    * at construction it ties the backbone's clip length to the head
      (``backbone.num_frames = track_head.num_frames``; a different explicit
      value is an error);
    * ``loss`` adds the backbone's :meth:`VPPBackbone.pop_losses`:
      ``loss_vpp_select`` (summed into the total loss by mmengine) and the
      logged-only scalars ``vpp_keep`` and ``vpp_pkr``;
    * with ``train_frame_order='official'`` the backbone runs the frames of
      every training clip in the official code's order
      (:func:`mmsparse.vpp.clip_run_order`: the later reference frame
      dense, then the earlier one, then the key frame, from the clip's
      ``key_frames_inds``), and the features go back to time order before
      the head, so the head's clip is unchanged.

    ``predict`` is inherited: the backbone gets the frames of one video in
    order and prunes every frame after the first with the previous frame's
    prior. Dense checkpoints of the same model load (the backbone maps
    ``backbone.*`` to ``backbone.backbone.*``).

    Args:
        backbone (dict): A ``VPPBackbone`` config.
        track_head (dict): Configuration of the track head.
        data_preprocessor (dict, optional): ``TrackDataPreprocessor``
            config. Defaults to None.
        train_frame_order (str): Order in which the backbone runs a
            training clip's frames (each pruned with the prior of the one
            run before it): ``'forward'`` (time order) or ``'official'``.
            Inference always runs a video forward. Defaults to
            ``'forward'``.
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 backbone: dict,
                 track_head: dict,
                 data_preprocessor: Optional[dict] = None,
                 train_frame_order: str = 'forward',
                 init_cfg: Optional[dict] = None) -> None:
        if train_frame_order not in CLIP_ORDERS:
            raise ValueError(f'VPPMask2FormerVideo: train_frame_order must '
                             f'be one of {CLIP_ORDERS}, got '
                             f'{train_frame_order!r}')
        super().__init__(
            backbone=backbone,
            track_head=track_head,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.train_frame_order = train_frame_order
        if not hasattr(self.backbone, 'pop_losses'):
            raise TypeError(
                f'VPPMask2FormerVideo: needs a VPPBackbone, got '
                f"{type(self.backbone).__name__}; use type='Mask2FormerVideo'"
                ' for a dense backbone')
        head_frames = self.track_head.num_frames
        if self.backbone.num_frames is None:
            self.backbone.num_frames = head_frames
        elif self.backbone.num_frames != head_frames:
            raise ValueError(
                f'VPPMask2FormerVideo: backbone.num_frames='
                f'{self.backbone.num_frames} differs from '
                f'track_head.num_frames={head_frames}; leave it unset')

    def run_orders(self, num_frames: int,
                   data_samples: TrackSampleList) -> List[List[int]]:
        """Per training clip, the positions of its frames in run order
        (``key_frames_inds`` of each sample; a clip without it gets a random
        key position)."""
        orders = []
        for sample in data_samples:
            keys = sample.metainfo.get('key_frames_inds')
            orders.append(clip_run_order(
                num_frames, int(keys[0]) if keys else None,
                self.train_frame_order))
        return orders

    def loss(self, inputs: Tensor, data_samples: TrackSampleList,
             **kwargs) -> dict:
        """Segmentation losses of the head plus the VPP selection loss."""
        if self.train_frame_order == 'forward':
            losses = super().loss(inputs, data_samples, **kwargs)
        else:
            assert inputs.dim() == 5, \
                'The img must be 5D Tensor (N, T, C, H, W).'
            N, T = inputs.shape[:2]
            order = torch.tensor(self.run_orders(T, data_samples),
                                 device=inputs.device)
            clips = torch.arange(N, device=inputs.device)[:, None]
            out = self.backbone(inputs[clips, order].flatten(0, 1))
            back = order.argsort(dim=1)  # run position of each time step

            def to_time_order(t: Tensor) -> Tensor:
                return t.unflatten(0, (N, T))[clips, back].flatten(0, 1)

            feats = [to_time_order(f) for f in out]
            if isinstance(out, KeepSetFeatures):  # the keep set follows
                keep = None if out.keep is None else to_time_order(out.keep)
                feats = KeepSetFeatures(feats, keep, out.hw, out.clip_len)
            losses = self.track_head.loss(feats, data_samples)
        losses.update(self.backbone.pop_losses())
        return losses
