"""VPP: a backbone wrapper that prunes patches of video frames early.

Glandorf, Norrenbrock, Rosenhahn, "Video Patch Pruning: Efficient Video
Instance Segmentation via Early Token Reduction", CVPR 2026 Workshops,
https://arxiv.org/abs/2604.00827. The algorithm lives in
:mod:`mmsparse.vpp`; this module only adapts it to a ViT backbone with
named seams (:class:`~mmsparse.models.backbones.ViTPyramid`) and to the
frame order of mmdet's ``Mask2FormerVideo``.
"""
import inspect
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from mmsparse.registry import MODELS
from mmsparse.utils.settings import check_settings
from mmsparse.vpp import FramePrior, FrameStats, VideoPatchPruner
from mmsparse.vpp.keep_set import KeepSetFeatures


@MODELS.register_module()
class VPPBackbone(BaseModule):
    """Video Patch Pruning around a ViT backbone with a feature pyramid.

    Frame order. In training (``self.training``) the input holds clips of
    ``num_frames`` frames, ordered ``[v0f0, v0f1, ..., v1f0, ...]`` (what
    ``Mask2FormerVideo.loss`` passes); at inference the whole batch is one
    video in frame order (what ``Mask2FormerVideo.predict`` passes). In both
    cases frame 0 runs dense and every later frame is pruned with the prior
    of the frame before it; the state is local to one call, so it resets
    per video (and per clip).

    Pruning. At block ``prune_layer`` the patches are reduced to exactly
    ``round(keep_ratio * N)``; the remaining blocks run on the kept patches
    only (real gather/scatter at inference; key-padding mask + pass-through
    in training, so gradients reach the selector through a straight-through
    top-k). Several stages may be given (lists), e.g. the paper's ViT-S
    schedule ``prune_layer=[1, 3, 6, 9], keep_ratio=[0.7, 0.56, 0.448,
    0.358]``: stage 0 uses ``selector``, later stages a small image head.

    Fill-back. A pruned position keeps the token it had in the block where
    it was pruned (it passes through the remaining blocks unchanged). The
    final norm and the feature pyramid then see the full grid, so the pixel
    decoder gets maps of the dense shape and order. This costs nothing,
    keeps the features of pruned positions in the range the decoder knows
    (zeros would not be), and is exactly what training produces, so there
    is no train/test mismatch.

    Extra loss. The selection loss ``loss_vpp_select`` (see
    :meth:`mmsparse.vpp.VideoPatchPruner.loss`) cannot be returned by a
    backbone: :class:`~mmsparse.models.VPPMask2FormerVideo` collects it with
    :meth:`pop_losses` and also ties ``num_frames`` to
    ``track_head.num_frames``.

    Args:
        backbone (dict | nn.Module): The wrapped backbone (config or
            module). It needs the seams of ``ViTPyramid``: ``embed(x) ->
            (tokens, hw)``, ``blocks`` (each ``block(x, attn_mask)``),
            ``tokens_to_featmap(tokens, hw)``, ``pyramid``,
            ``num_extra_tokens`` and ``embed_dims``.
        num_frames (int, optional): Frames per training clip. Defaults to
            None: set by ``VPPMask2FormerVideo`` from the head.
        **pruner_settings: Keyword arguments of
            :class:`~mmsparse.vpp.VideoPatchPruner`, passed through
            unchanged with its defaults (the token width, the number of
            blocks and of extra tokens come from the wrapped backbone):
            ``keep_ratio`` (fraction of all patches kept from each stage
            on, strictly decreasing; 1.0 runs the backbone unchanged;
            0.4), ``prune_layer`` (block of each stage; 1: block 0 dense,
            as in the paper), ``selector`` ('temporal' = Map-SM, 'image'
            or 'random'), ``prior_layer`` (block whose output is the next
            frame's prior; None = ``max(prune_layer, L // 2 - 1)``),
            ``hidden_ratio``, ``stage_hidden_ratio``, ``smooth_kernel``,
            ``tau_match``, ``tau_select``, ``gumbel_noise`` (in
            training), ``test_gumbel_noise`` (at inference too, as the
            official code), ``loss_weight`` (the official
            ``ratio_sm_sparsity_loss``), ``map_loss_weight`` (the official
            ``ratio_match_module_sparsity_loss``) and ``soft_target``.
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    _SEAMS = ('embed', 'blocks', 'tokens_to_featmap', 'pyramid',
              'num_extra_tokens', 'embed_dims')
    #: VideoPatchPruner arguments read from the wrapped backbone.
    _DERIVED = ('embed_dims', 'num_layers', 'num_extra_tokens')

    def __init__(self,
                 backbone: Union[dict, nn.Module],
                 num_frames: Optional[int] = None,
                 init_cfg: Optional[dict] = None,
                 **pruner_settings) -> None:
        super().__init__(init_cfg=init_cfg)
        owner = type(self).__name__
        check_settings(VideoPatchPruner, pruner_settings, owner,
                       self._DERIVED)
        if isinstance(backbone, nn.Module):
            self.backbone = backbone
        elif isinstance(backbone, dict):
            self.backbone = MODELS.build(backbone)
        else:
            raise TypeError(f'{owner}: backbone must be a config dict or '
                            f'an nn.Module, got {type(backbone).__name__}')
        self._check_wrappable(self.backbone)
        self.num_frames = num_frames
        try:
            self.pruner = VideoPatchPruner(
                embed_dims=self.backbone.embed_dims,
                num_layers=len(self.backbone.blocks),
                num_extra_tokens=self.backbone.num_extra_tokens,
                **pruner_settings)
        except ValueError as err:  # same argument names: speak as the wrapper
            msg = str(err)
            prefix = f'{VideoPatchPruner.__name__}: '
            raise ValueError(f'{owner}: ' + (
                msg[len(prefix):] if msg.startswith(prefix) else msg)) \
                from None
        self.out_channels = getattr(self.backbone, 'out_channels', None)
        self.last_stats: List[FrameStats] = []
        self.last_hw: Optional[Tuple[int, int]] = None
        self._register_load_state_dict_pre_hook(self._wrap_dense_keys)

    # ------------------------------------------------------------ checks
    @classmethod
    def _check_wrappable(cls, backbone: nn.Module) -> None:
        name = type(backbone).__name__
        missing = [s for s in cls._SEAMS if not hasattr(backbone, s)]
        if not missing:
            blocks = backbone.blocks
            if not isinstance(blocks, (nn.ModuleList, nn.Sequential)) \
                    or len(blocks) == 0:
                missing.append('blocks (a non-empty ModuleList)')
            else:
                params = inspect.signature(blocks[0].forward).parameters
                if len(params) < 2:
                    missing.append('block(x, attn_mask) (blocks take no '
                                   'attention mask)')
        if missing:
            raise TypeError(
                f'VPPBackbone: cannot wrap {name}: it lacks {missing}. It '
                f'needs a ViT with the seams {list(cls._SEAMS)} and blocks '
                "called as block(x, attn_mask), e.g. type='ViTPyramid'")

    @property
    def num_frames(self) -> Optional[int]:
        """Frames per training clip (``track_head.num_frames``)."""
        return self._num_frames

    @num_frames.setter
    def num_frames(self, value: Optional[int]) -> None:
        if value is not None and (isinstance(value, bool)
                                  or not isinstance(value, int) or value < 1):
            raise ValueError(f'VPPBackbone: num_frames must be an int >= 1 '
                             f'or None, got {value!r}')
        self._num_frames = value

    def _wrap_dense_keys(self, state_dict, prefix, *args, **kwargs) -> None:
        """Load checkpoints of the dense model: ``backbone.X`` of the plain
        backbone becomes ``backbone.backbone.X`` (the paper fine-tunes the
        pruned model from the dense one)."""
        own = (prefix + 'backbone.', prefix + 'pruner.')
        for key in list(state_dict):
            if key.startswith(prefix) and not key.startswith(own):
                state_dict[prefix + 'backbone.' + key[len(prefix):]] = \
                    state_dict.pop(key)

    # ----------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Multi-scale features of every frame, in input order.

        Args:
            x (Tensor): Frames (B, 3, H, W): clips of ``num_frames`` in
                training, one video at inference.

        Returns:
            KeepSetFeatures: The wrapped backbone's outputs (a tuple, same
            shapes) with the keep set of every frame (``keep`` None when
            dense), which a keep-set pixel decoder reads.
        """
        if self.pruner.dense:
            self.last_stats, self.last_hw = [], None
            return KeepSetFeatures(self.backbone(x))
        B = x.shape[0]
        if self.training:
            T = self.num_frames
            if T is None:
                raise ValueError(
                    'VPPBackbone: needs the clip length in training: use '
                    "model type='VPPMask2FormerVideo' (ties it to "
                    'track_head.num_frames) or set num_frames')
            if B % T:
                raise ValueError(f'VPPBackbone: batch of {B} frames is not '
                                 f'a whole number of {T}-frame clips')
        else:
            T = B
        return self._run(x, T, None)[0]

    def forward_stream(self, x: torch.Tensor,
                       prior: Optional[FramePrior] = None
                       ) -> Tuple[Tuple[torch.Tensor, ...], Optional[FramePrior]]:
        """Online inference: the next frames of one video, in order.

        Continues from ``prior`` (the value this method returned for the
        previous chunk; None starts a new video with a dense frame), so a
        video can be fed frame by frame. Used by the benchmark to time a
        pruned frame in steady state.

        Args:
            x (Tensor): The next frames (T, 3, H, W) of one video.
            prior (FramePrior, optional): State after the previous chunk.
                Defaults to None.

        Returns:
            tuple: the multi-scale features of the T frames
            (:class:`KeepSetFeatures`) and the state after the last one (None
            when dense).
        """
        if self.pruner.dense:
            return KeepSetFeatures(self.backbone(x)), None
        return self._run(x, x.shape[0], prior)

    def _run(self, x, T, prior):
        B = x.shape[0]
        tokens, hw = self.backbone.embed(x)
        tokens = tokens.unflatten(0, (B // T, T))
        outs, stats = [], []
        for t in range(T):
            out, prior, frame_stats = self.pruner(tokens[:, t], hw,
                                                  self.backbone.blocks, prior)
            outs.append(out)
            stats.append(frame_stats)
        self.last_stats, self.last_hw = stats, hw
        tokens = torch.stack(outs, dim=1).flatten(0, 1)
        featmap = self.backbone.tokens_to_featmap(tokens, hw)
        feats = self.backbone.pyramid(featmap)
        N = hw[0] * hw[1]
        gates = [s.gate.float() if s.gate is not None else
                 x.new_ones(B // T, N, dtype=torch.float32) for s in stats]
        keep = torch.stack(gates, dim=1).flatten(0, 1)
        return KeepSetFeatures(feats, keep, tuple(hw), T), prior

    # ---------------------------------------------------- losses and logs
    def pop_losses(self) -> Dict[str, torch.Tensor]:
        """Selection loss and logged keep statistics of the last forward.

        Returns ``loss_vpp_select`` (when a stage is learned) and two
        logged-only scalars: ``vpp_keep`` (mean final keep ratio of the
        pruned frames) and ``vpp_pkr`` (mean patch keep ratio over all
        frames, the dense first frames included). Clears the stored soft
        scores (their graph).
        """
        stats = self.last_stats
        out = self.pruner.loss(stats)
        if stats:
            device = next(self.parameters()).device
            pruned = [s.keep_ratio for s in stats if s.pruned]
            out['vpp_keep'] = torch.tensor(
                sum(pruned) / len(pruned) if pruned else 1.0, device=device)
            out['vpp_pkr'] = torch.tensor(
                sum(s.pkr for s in stats) / len(stats), device=device)
        for s in stats:
            s.soft_keep = []
        return out

    def keep_masks(self) -> Optional[torch.Tensor]:
        """Final keep mask per frame of the last forward, (T, h, w) bool.

        Dense frames are all True. Rows are frames in input order (sample 0
        of each step when the batch held several clips). None before any
        forward or when dense.
        """
        if not self.last_stats or self.last_hw is None:
            return None
        h, w = self.last_hw
        masks = []
        for s in self.last_stats:
            if s.keep_mask is None:
                masks.append(torch.ones(h * w, dtype=torch.bool))
            else:
                masks.append(s.keep_mask[0].detach().cpu())
        return torch.stack(masks).view(-1, h, w)

    def get_layer_depth(self, param_name: str, prefix: str = ''):
        """Layer id for layer-wise lr decay (delegates to the wrapped ViT;
        the selectors count as the last layer)."""
        inner = prefix + 'backbone.'
        if param_name.startswith(inner) and hasattr(self.backbone,
                                                    'get_layer_depth'):
            return self.backbone.get_layer_depth(param_name, inner)
        total = len(self.backbone.blocks) + 2
        return total - 1, total
