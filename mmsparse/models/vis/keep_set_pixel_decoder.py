"""A Mask2Former pixel decoder that updates only VPP's kept positions."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.layers import MSDeformAttnPixelDecoder
from torch import Tensor

from mmsparse.registry import MODELS
from mmsparse.vpp import ScoreHead
from mmsparse.vpp.keep_set import (KeepSetFeatures, carry_gate, conv3x3_at,
                                   dilate_gate, gather_rows, level_gates,
                                   masked_group_norm, padded_indices,
                                   scatter_rows, split_sizes)

CARRIES = ('input', 'previous')
QUERY_SELECTS = ('keep_set', 'image')


@MODELS.register_module()
class KeepSetPixelDecoder(MSDeformAttnPixelDecoder):
    """``MSDeformAttnPixelDecoder`` whose encoder updates only kept queries.

    The 6-layer multi-scale deformable-attention encoder of Mask2Former
    updates every position of every level on every frame. Driven by the
    keep set of a :class:`~mmsparse.models.backbones.VPPBackbone` (the
    patches chosen from the previous frame's deep features, carried to every
    encoder level, optionally dilated by ``margin`` patches), this decoder
    updates only the queries at kept positions, as Sparse DETR does with its
    own scorer (Roh et al., ICLR 2022, https://arxiv.org/abs/2111.14330):

    * values stay dense: every kept query samples the full multi-scale map
      of the layer;
    * a position that is not updated carries, per layer, its encoder input
      (``carry='input'``) or the output of the same layer for the frame
      before (``carry='previous'``, temporal reuse; the first frame of a
      video or clip runs dense, as in the backbone).

    Two execution modes give the same forward values: in training every
    query runs and the output is mixed ``g * layer(x) + (1 - g) * carry``
    with the backbone's straight-through gate ``g``, so the segmentation
    loss also trains the selectors; at inference the kept queries are
    gathered, run and scattered back, so the work is really saved.

    ``query_select='image'`` is the image-only baseline: the same decoder
    with the positions chosen per frame by a learned score on the encoder
    input of the stride-16 level (a :class:`~mmsparse.vpp.ScoreHead`,
    straight-through top-k, Sparse-DETR / Focus-DETR style), keeping as
    many positions as VPP's keep set of that frame.

    The FPN level below the encoder (stride 4, whose 3x3 output conv is the
    largest single cost of the head after the encoder) follows the keep set
    too when ``update_mask_features``: its output conv runs only at kept
    positions (group-norm statistics over those positions, in training and
    at inference alike), the others carry the conv's input. The 1x1 mask
    feature projection and the transformer decoder see full maps.

    Frames without a keep set (a dense backbone row, the first frame of a
    video) run the layers of the parent class unchanged; at inference a
    batch that mixes them with pruned frames runs the two groups apart.

    Args:
        carry (str): What a position that is not updated holds: 'input' or
            'previous'. Defaults to 'input'.
        query_select (str): Where the updated positions come from:
            'keep_set' (VPP's) or 'image' (the image-score baseline).
            Defaults to 'keep_set'.
        margin (int): Dilation of the keep set on the patch grid (patches
            added on every side) before it is carried to the levels.
            Defaults to 0.
        score_hidden_dims (int): Hidden width of the image-score head.
            Defaults to 64.
        score_smooth_kernel (int): Odd smoothing window of the image-score
            head (as VPP's selectors). Defaults to 9.
        update_mask_features (bool): Run the FPN output conv below the
            encoder only at kept positions. Defaults to True.
        **kwargs: Arguments of ``MSDeformAttnPixelDecoder``.
    """

    def __init__(self,
                 carry: str = 'input',
                 query_select: str = 'keep_set',
                 margin: int = 0,
                 score_hidden_dims: int = 64,
                 score_smooth_kernel: int = 9,
                 update_mask_features: bool = True,
                 **kwargs) -> None:
        name = type(self).__name__
        if carry not in CARRIES:
            raise ValueError(f'{name}: carry must be one of {CARRIES}, '
                             f'got {carry!r}')
        if query_select not in QUERY_SELECTS:
            raise ValueError(f'{name}: query_select must be one of '
                             f'{QUERY_SELECTS}, got {query_select!r}')
        if isinstance(margin, bool) or not isinstance(margin, int) \
                or margin < 0:
            raise ValueError(f'{name}: margin must be an int >= 0 (patches '
                             f'added around the keep set), got {margin!r}')
        super().__init__(**kwargs)
        self.carry = carry
        self.query_select = query_select
        self.margin = margin
        self.update_mask_features = update_mask_features
        if update_mask_features:
            for conv in self.output_convs:
                self._check_output_conv(conv)
        self.gated_output_conv = GatedOutputConv()
        self.query_scorer = None
        if query_select == 'image':
            self.query_scorer = ScoreHead(
                self.encoder.embed_dims,
                score_hidden_dims,
                smooth_kernel=score_smooth_kernel)

    def _check_output_conv(self, module: nn.Module) -> None:
        conv, norm = module.conv, module.norm
        ok = (conv.kernel_size == (3, 3) and conv.stride == (1, 1)
              and conv.padding == (1, 1) and conv.dilation == (1, 1)
              and conv.groups == 1 and module.order[0] == 'conv'
              and (norm is None or isinstance(norm, nn.GroupNorm)))
        if not ok:
            raise ValueError(
                f'{type(self).__name__}: update_mask_features=True needs '
                'FPN output convs of kernel 3, stride 1, padding 1 with '
                'GroupNorm (or no norm) after the conv, got '
                f'{conv} + {type(norm).__name__}; set '
                'update_mask_features=False')

    # ----------------------------------------------------------- forward
    def forward(self, feats: Sequence[Tensor]) -> Tuple[Tensor, List[Tensor]]:
        """Mask features and multi-scale features, as the parent.

        Args:
            feats (KeepSetFeatures): The VPP backbone's output.

        Returns:
            tuple: ``mask_feature`` (B, C, H/4, W/4) and the multi-scale
            features (coarse to fine).
        """
        if not isinstance(feats, KeepSetFeatures):
            raise TypeError(
                f'{type(self).__name__}: got backbone features without a '
                f'keep set ({type(feats).__name__}); it needs '
                "model.backbone.type='VPPBackbone' (use "
                "type='MSDeformAttnPixelDecoder' with a dense backbone)")
        enc = self._encoder_inputs(feats)
        grid_gate = self._grid_gate(feats, enc)
        if grid_gate is None:
            memory = self.encoder(**enc['kwargs'])
        else:
            gate = level_gates(grid_gate, feats.hw, enc['sizes'])
            memory = self._sparse_encode(enc, gate, feats.clip_len)
        if not self.update_mask_features:
            grid_gate = None
        return self._fpn(feats, memory, enc['sizes'], grid_gate, feats.hw)

    def _encoder_inputs(self, feats: Sequence[Tensor]) -> Dict:
        """Projected queries, positions and reference points of all levels
        (coarse to fine), as ``MSDeformAttnPixelDecoder.forward``."""
        batch_size = feats[0].shape[0]
        queries, masks, pos_embeds, refs, sizes = [], [], [], [], []
        for i in range(self.num_encoder_levels):
            level_idx = self.num_input_levels - i - 1
            feat = feats[level_idx]
            h, w = feat.shape[-2:]
            projected = self.input_convs[i](feat)
            mask = feat.new_zeros((batch_size, h, w), dtype=torch.bool)
            pos = self.postional_encoding(mask)
            pos = self.level_encoding.weight[i].view(1, -1, 1, 1) + pos
            ref = self.point_generator.single_level_grid_priors(
                (h, w), level_idx, device=feat.device)
            factor = feat.new_tensor([w, h]) * self.strides[level_idx]
            queries.append(projected.flatten(2).transpose(1, 2))
            pos_embeds.append(pos.flatten(2).transpose(1, 2))
            masks.append(mask.flatten(1))
            refs.append(ref / factor)
            sizes.append((int(h), int(w)))
        spatial_shapes = torch.as_tensor(
            sizes, dtype=torch.long, device=feats[0].device)
        level_start_index = torch.cat((spatial_shapes.new_zeros(
            (1, )), spatial_shapes.prod(1).cumsum(0)[:-1]))
        reference_points = torch.cat(refs, dim=0)[None, :, None].repeat(
            batch_size, 1, self.num_encoder_levels, 1)
        kwargs = dict(
            query=torch.cat(queries, dim=1),
            query_pos=torch.cat(pos_embeds, dim=1),
            key_padding_mask=torch.cat(masks, dim=1),
            spatial_shapes=spatial_shapes,
            reference_points=reference_points,
            level_start_index=level_start_index,
            valid_ratios=reference_points.new_ones(
                (batch_size, self.num_encoder_levels, 2)))
        return dict(kwargs=kwargs, sizes=sizes)

    def _grid_gate(self, feats: KeepSetFeatures,
                   enc: Dict) -> Optional[Tensor]:
        """(B, h*w) gate of the updated positions on the patch grid (the
        keep set or the image score's choice, dilated by ``margin``); None
        = every frame dense."""
        keep = feats.keep
        if keep is None:
            return None
        hw, sizes = tuple(feats.hw), enc['sizes']
        if self.query_select == 'image':
            keep = self._image_gate(keep, hw, sizes, enc['kwargs']['query'])
        return dilate_gate(keep, hw, self.margin)

    def _image_gate(self, keep: Tensor, hw: Tuple[int, int],
                    sizes: List[Tuple[int, int]], query: Tensor) -> Tensor:
        """Top-k of the image score on the stride-16 level, k per frame =
        the size of VPP's keep set (dense frames stay dense)."""
        if hw not in sizes:
            raise ValueError(
                f'{type(self).__name__}: no encoder level has the patch '
                f'grid {hw} (levels {sizes}); query_select=image scores the '
                'level of the patch grid')
        level = sizes.index(hw)
        start = sum(split_sizes(sizes[:level]))
        tokens = query[:, start:start + hw[0] * hw[1]]
        soft = self.query_scorer(tokens, hw)
        counts = keep.detach().sum(1).round().long()
        ranks = soft.detach().argsort(1, descending=True).argsort(1)
        hard = (ranks < counts[:, None]).to(soft.dtype)
        if self.training and soft.requires_grad:
            return hard - soft.detach() + soft
        return hard

    # ---------------------------------------------------- sparse encoder
    def _sparse_encode(self, enc: Dict, gate: Tensor, clip_len: int) -> Tensor:
        """Encoder memory (B, M, C) with only the gated queries updated."""
        kw = enc['kwargs']
        B = gate.shape[0]
        if self.carry == 'input':
            frames = torch.arange(B, device=gate.device)
            return self._encode_frames(kw, gate, None, frames)[0]
        out = kw['query'].new_empty(kw['query'].shape)
        prev = None
        for t in range(clip_len):
            frames = torch.arange(t, B, clip_len, device=gate.device)
            memory, prev = self._encode_frames(kw, gate[frames], prev, frames)
            out = out.index_copy(0, frames, memory.to(out.dtype))
        return out

    def _encode_frames(self, kw: Dict, gate: Tensor,
                       carries: Optional[List[Tensor]],
                       frames: Tensor) -> Tuple[Tensor, List[Tensor]]:
        """The encoder for some frames of the batch; at inference the dense
        frames and the pruned ones run apart (one padded gather would make
        every frame as long as a dense one)."""
        dense = (gate.detach() > 0.5).all(1)
        if self.training or bool(dense.all()) or not bool(dense.any()):
            return self._run_layers(kw, gate, carries, frames)
        x = kw['query'][frames]
        out, states = x.new_empty(x.shape), None
        for rows in (dense, ~dense):
            sub = None if carries is None else [c[rows] for c in carries]
            y, st = self._run_layers(kw, gate[rows], sub, frames[rows])
            out[rows] = y.to(out.dtype)
            if states is None:
                states = [x.new_empty(x.shape) for _ in st]
            for full, part in zip(states, st):
                full[rows] = part.to(full.dtype)
        return out, states

    def _run_layers(self, kw: Dict, gate: Tensor,
                    carries: Optional[List[Tensor]],
                    frames: Tensor) -> Tuple[Tensor, List[Tensor]]:
        """All encoder layers for the ``frames`` of the batch.

        ``carries`` (per layer, the previous frame's output) replace the
        input as what a position that is not updated holds.
        """
        x = kw['query'][frames]
        pos = kw['query_pos'][frames]
        ref = kw['reference_points'][frames]
        pad = kw['key_padding_mask'][frames]
        shapes, starts = kw['spatial_shapes'], kw['level_start_index']
        mask = gate.detach() > 0.5
        states = []
        if bool(mask.all()):  # dense frames: the parent's layers
            for layer in self.encoder.layers:
                x = layer(query=x, query_pos=pos, key_padding_mask=pad,
                          spatial_shapes=shapes, level_start_index=starts,
                          valid_ratios=kw['valid_ratios'][frames],
                          reference_points=ref)
                states.append(x)
            return x, states
        if self.training:
            g = gate[..., None]
            for i, layer in enumerate(self.encoder.layers):
                y = self._layer(layer, x, x, pos, ref, pad, shapes, starts)
                carry = x if carries is None else carries[i]
                x = g * y + (1 - g) * carry
                states.append(x)
            return x, states
        idx, valid = padded_indices(mask)
        pos_k, ref_k = gather_rows(pos, idx), gather_rows(ref, idx)
        for i, layer in enumerate(self.encoder.layers):
            y = self._layer(layer, gather_rows(x, idx), x, pos_k, ref_k, pad,
                            shapes, starts)
            carry = x if carries is None else carries[i]
            x = scatter_rows(carry, idx, valid, y)
            states.append(x)
        return x, states

    @staticmethod
    def _layer(layer, query: Tensor, value: Tensor, query_pos: Tensor,
               reference_points: Tensor, key_padding_mask: Tensor,
               spatial_shapes: Tensor, level_start_index: Tensor) -> Tensor:
        """One encoder layer (``DeformableDetrTransformerEncoderLayer``)
        for a subset of queries sampling the full ``value`` map."""
        query = layer.self_attn(
            query=query,
            value=value,
            query_pos=query_pos,
            key_padding_mask=key_padding_mask,
            reference_points=reference_points,
            spatial_shapes=spatial_shapes,
            level_start_index=level_start_index)
        query = layer.norms[0](query)
        query = layer.ffn(query)
        return layer.norms[1](query)

    # ---------------------------------------------------------------- FPN
    def _fpn(self, feats: Sequence[Tensor], memory: Tensor,
             sizes: List[Tuple[int, int]], grid_gate: Optional[Tensor],
             hw: Optional[Tuple[int, int]]) -> Tuple[Tensor, List[Tensor]]:
        """The parent's FPN over the encoder memory; with ``grid_gate`` its
        output convs update only the gated positions."""
        batch_size = memory.shape[0]
        memory = memory.permute(0, 2, 1)
        outs = [
            x.reshape(batch_size, -1, h, w)
            for x, (h, w) in zip(memory.split(split_sizes(sizes), dim=-1),
                                 sizes)
        ]
        for i in range(self.num_input_levels - self.num_encoder_levels - 1,
                       -1, -1):
            cur_feat = self.lateral_convs[i](feats[i])
            y = cur_feat + F.interpolate(
                outs[-1],
                size=cur_feat.shape[-2:],
                mode='bilinear',
                align_corners=False)
            if grid_gate is None:
                outs.append(self.output_convs[i](y))
            else:
                gate = carry_gate(grid_gate, hw, y.shape[-2:])
                outs.append(
                    self.gated_output_conv(self.output_convs[i], y, gate))
        mask_feature = self.mask_feature(outs[-1])
        return mask_feature, outs[:self.num_outs]


class GatedOutputConv(nn.Module):
    """An FPN output conv (conv -> group norm -> activation, a ConvModule)
    run at the gated positions of its input only; the other positions keep
    the input.

    Holds no parameters: the ConvModule is an argument, so the decoder's
    state dict is the parent's. A module of its own so that profilers and
    FLOP counters see the work under one name.
    """

    def forward(self, module: nn.Module, y: Tensor, gate: Tensor) -> Tensor:
        """Args:
            module (nn.Module): The FPN output ConvModule (3x3, stride 1).
            y (Tensor): Its input (B, C, H, W).
            gate (Tensor): (B, H*W) gate of the map.

        Returns:
            Tensor: (B, C, H, W).
        """
        B, C, H, W = y.shape
        mask = gate.detach() > 0.5
        dense = mask.all(1)
        if bool(dense.all()):
            return module(y)
        carry = y.flatten(2).transpose(1, 2)
        if self.training:
            z = module.conv(y).flatten(2).transpose(1, 2)
            z = self._norm_act(module, z, mask)
            g = gate[..., None]
            out = g * z + (1 - g) * carry
        else:
            out = carry.clone()
            if bool(dense.any()):
                out[dense] = module(y[dense]).flatten(2).transpose(1, 2)
            rows = ~dense
            idx, valid = padded_indices(mask[rows])
            z = conv3x3_at(y[rows], idx, module.conv.weight, module.conv.bias)
            z = self._norm_act(module, z, valid)
            out[rows] = scatter_rows(carry[rows], idx, valid, z)
        return out.transpose(1, 2).reshape(B, -1, H, W)

    @staticmethod
    def _norm_act(module: nn.Module, z: Tensor, mask: Tensor) -> Tensor:
        """The module's group norm (statistics over ``mask``) and
        activation on (B, P, C) conv outputs."""
        norm = module.norm
        if norm is not None:
            z = masked_group_norm(z, mask, norm.num_groups, norm.weight,
                                  norm.bias, norm.eps)
        if module.with_activation:
            z = module.activate(z)
        return z
