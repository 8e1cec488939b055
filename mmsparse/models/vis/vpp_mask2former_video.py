"""Mask2Former (video) with a VPP backbone: adds the backbone's losses."""
from typing import Optional

from mmdet.models.vis.mask2former_vis import Mask2FormerVideo
from mmdet.structures import TrackSampleList
from torch import Tensor

from mmsparse.registry import MODELS


@MODELS.register_module()
class VPPMask2FormerVideo(Mask2FormerVideo):
    """``Mask2FormerVideo`` whose backbone is a :class:`VPPBackbone`.

    A backbone cannot return a loss to ``Mask2FormerVideo.loss``. This
    subclass changes two things and nothing else:

    * at construction it ties the backbone's clip length to the head
      (``backbone.num_frames = track_head.num_frames``; a different explicit
      value is an error);
    * ``loss`` adds the backbone's :meth:`VPPBackbone.pop_losses`:
      ``loss_vpp_select`` (summed into the total loss by mmengine) and the
      logged-only scalars ``vpp_keep`` and ``vpp_pkr``.

    ``predict`` is inherited: the backbone gets the frames of one video in
    order and prunes every frame after the first with the previous frame's
    prior. Dense checkpoints of the same model load (the backbone maps
    ``backbone.*`` to ``backbone.backbone.*``).

    Args:
        backbone (dict): A ``VPPBackbone`` config.
        track_head (dict): Configuration of the track head.
        data_preprocessor (dict, optional): ``TrackDataPreprocessor``
            config. Defaults to None.
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 backbone: dict,
                 track_head: dict,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            backbone=backbone,
            track_head=track_head,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
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

    def loss(self, inputs: Tensor, data_samples: TrackSampleList,
             **kwargs) -> dict:
        """Segmentation losses of the head plus the VPP selection loss."""
        losses = super().loss(inputs, data_samples, **kwargs)
        losses.update(self.backbone.pop_losses())
        return losses
