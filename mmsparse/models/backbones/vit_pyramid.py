"""A plain ViT with a ViTDet-style simple feature pyramid.

``Mask2FormerVideo`` has no neck: its backbone must return the four maps at
strides 4/8/16/32 itself. :class:`ViTPyramid` runs a plain (DeiT/ViT) encoder
at stride 16 and turns its last feature map into the four scales with
:class:`SimplePyramid` (Li et al., "Exploring Plain Vision Transformer
Backbones for Object Detection", https://arxiv.org/abs/2203.16527).

The block loop is explicit. Pruning methods intercept it at named seams:
``embed`` (patch + position embedding), ``blocks[i]`` (one encoder block each;
``TransformerBlock.forward`` takes an optional attention mask) and
``tokens_to_featmap`` / ``pyramid`` (after the last block).
"""
import math
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import MMLogger
from mmengine.model import BaseModule
from mmengine.runner.checkpoint import CheckpointLoader

from mmsparse.registry import MODELS


class DropPath(nn.Module):
    """Stochastic depth per sample.

    Args:
        drop_prob (float): Probability of dropping the residual branch.
            Defaults to 0.
    """

    def __init__(self, drop_prob: float = 0.) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0. or not self.training:
            return x
        keep = 1 - self.drop_prob
        shape = (x.shape[0], ) + (1, ) * (x.ndim - 1)
        mask = x.new_empty(shape).bernoulli_(keep)
        return x * mask / keep


class Attention(nn.Module):
    """Multi-head self-attention with a fused and an explicit path.

    Args:
        embed_dims (int): Token width.
        num_heads (int): Number of heads.
        qkv_bias (bool): Bias on the qkv projection. Defaults to True.
        fused (bool): Use ``F.scaled_dot_product_attention``. The explicit
            path materialises the attention probabilities (kept in
            ``self.last_attn`` when ``keep_attn`` is set). Defaults to True.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 qkv_bias: bool = True,
                 fused: bool = True) -> None:
        super().__init__()
        if embed_dims % num_heads != 0:
            raise ValueError(f'embed_dims ({embed_dims}) must be divisible '
                             f'by num_heads ({num_heads})')
        self.num_heads = num_heads
        self.head_dims = embed_dims // num_heads
        self.scale = self.head_dims**-0.5
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.fused = fused
        self.keep_attn = False
        self.last_attn: Optional[torch.Tensor] = None

    def forward(self,
                x: torch.Tensor,
                attn_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Args:
            x (Tensor): Tokens (B, N, C).
            attn_mask (Tensor, optional): Boolean (B, N) key mask (True =
                attend) or an additive float mask broadcastable to
                (B, heads, N, N). Defaults to None.
        """
        B, N, _ = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        if attn_mask is not None and attn_mask.dtype == torch.bool \
                and attn_mask.dim() == 2:
            attn_mask = attn_mask[:, None, None, :]
        if self.fused and not self.keep_attn:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)
            if attn_mask is not None:
                if attn_mask.dtype == torch.bool:
                    attn = attn.masked_fill(~attn_mask, float('-inf'))
                else:
                    attn = attn + attn_mask
            attn = attn.softmax(dim=-1)
            if self.keep_attn:
                self.last_attn = attn
            out = attn @ v
        out = out.transpose(1, 2).reshape(B, N, -1)
        return self.proj(out)


class Mlp(nn.Module):
    """Two-layer MLP with GELU.

    Args:
        embed_dims (int): Input and output width.
        hidden_dims (int): Hidden width.
    """

    def __init__(self, embed_dims: int, hidden_dims: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(embed_dims, hidden_dims)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dims, embed_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class TransformerBlock(nn.Module):
    """Pre-norm ViT encoder block (timm parameter names).

    Args:
        embed_dims (int): Token width.
        num_heads (int): Number of attention heads.
        hidden_dims (int): MLP hidden width.
        qkv_bias (bool): Bias on qkv. Defaults to True.
        drop_path (float): Stochastic depth rate. Defaults to 0.
        fused_attn (bool): See :class:`Attention`. Defaults to True.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 hidden_dims: int,
                 qkv_bias: bool = True,
                 drop_path: float = 0.,
                 fused_attn: bool = True) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dims, eps=1e-6)
        self.attn = Attention(embed_dims, num_heads, qkv_bias, fused_attn)
        self.norm2 = nn.LayerNorm(embed_dims, eps=1e-6)
        self.mlp = Mlp(embed_dims, hidden_dims)
        self.drop_path = DropPath(drop_path)

    def forward(self,
                x: torch.Tensor,
                attn_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), attn_mask))
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an (N, C, H, W) map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = super().forward(x)
        return x.permute(0, 3, 1, 2)


@MODELS.register_module()
class SimplePyramid(BaseModule):
    """ViTDet simple feature pyramid: one stride-16 map to strides 4/8/16/32.

    stride 4: 2 x (ConvTranspose 2x2, LN, GELU between); stride 8: one
    ConvTranspose; stride 16: identity; stride 32: max-pool. Each scale is
    then projected by 1x1 conv + LN + 3x3 conv + LN to ``out_channels``
    (skipped when ``out_channels`` is None, leaving C/4, C/2, C, C channels).

    Args:
        in_channels (int): Channels of the stride-16 input map.
        out_channels (int, optional): Channels of every output map.
            Defaults to 256.
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: Optional[int] = 256,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        c = in_channels
        self.scales = nn.ModuleList([
            nn.Sequential(
                nn.ConvTranspose2d(c, c // 2, 2, 2), LayerNorm2d(c // 2),
                nn.GELU(), nn.ConvTranspose2d(c // 2, c // 4, 2, 2)),
            nn.ConvTranspose2d(c, c // 2, 2, 2),
            nn.Identity(),
            nn.MaxPool2d(2, 2),
        ])
        scale_channels = [c // 4, c // 2, c, c]
        if out_channels is None:
            self.projs = nn.ModuleList([nn.Identity() for _ in range(4)])
            self.out_channels = scale_channels
        else:
            self.projs = nn.ModuleList([
                nn.Sequential(
                    nn.Conv2d(sc, out_channels, 1, bias=False),
                    LayerNorm2d(out_channels),
                    nn.Conv2d(
                        out_channels, out_channels, 3, padding=1, bias=False),
                    LayerNorm2d(out_channels)) for sc in scale_channels
            ])
            self.out_channels = [out_channels] * 4

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        return [proj(scale(x)) for scale, proj in zip(self.scales, self.projs)]


def resize_pos_embed(pos_embed: torch.Tensor,
                     src_shape: Tuple[int, int],
                     dst_shape: Tuple[int, int],
                     num_extra_tokens: int,
                     mode: str = 'bicubic') -> torch.Tensor:
    """Interpolate a (1, extra + h*w, C) position embedding to another grid.

    Args:
        pos_embed (Tensor): The embedding, extra tokens first.
        src_shape (tuple): (h, w) grid the embedding was made for.
        dst_shape (tuple): (h, w) grid wanted.
        num_extra_tokens (int): Leading tokens not on the grid (cls).
        mode (str): Interpolation mode. Defaults to 'bicubic'.

    Returns:
        Tensor: (1, extra + H*W, C).
    """
    if tuple(src_shape) == tuple(dst_shape):
        return pos_embed
    extra = pos_embed[:, :num_extra_tokens]
    grid = pos_embed[:, num_extra_tokens:]
    h, w = src_shape
    if grid.shape[1] != h * w:
        raise ValueError(f'pos_embed has {grid.shape[1]} grid tokens, '
                         f'which is not {h}x{w}')
    grid = grid.reshape(1, h, w, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(
        grid.float(), size=tuple(dst_shape), mode=mode,
        align_corners=False).to(pos_embed.dtype)
    grid = grid.flatten(2).transpose(1, 2)
    return torch.cat([extra, grid], dim=1)


# mmpretrain VisionTransformer key -> ViTPyramid key (regex-free, by part).
_MMPRETRAIN_RENAMES = (
    ('patch_embed.projection.', 'patch_embed.proj.'),
    ('.ln1.', '.norm1.'),
    ('.ln2.', '.norm2.'),
    ('.ffn.layers.0.0.', '.mlp.fc1.'),
    ('.ffn.layers.1.', '.mlp.fc2.'),
)


def convert_vit_state_dict(state_dict: Dict[str, torch.Tensor]) -> 'OrderedDict':
    """Bring timm/DeiT or mmpretrain ViT weights to ViTPyramid's key names.

    Accepts the raw dict of a DeiT release (``{'model': ...}`` already
    unwrapped), a timm state dict, or an mmpretrain classifier/backbone state
    dict (``backbone.`` prefix removed or present). Classifier heads, the
    distillation token and pre-logits are dropped.

    Args:
        state_dict (dict): Source weights.

    Returns:
        OrderedDict: Weights with ViTPyramid names.
    """
    out = OrderedDict()
    is_mmpretrain = any(k.startswith(('layers.', 'backbone.layers.'))
                        for k in state_dict)
    for key, value in state_dict.items():
        if key.startswith('backbone.'):
            key = key[len('backbone.'):]
        elif is_mmpretrain:
            continue  # head.* / neck.* of a classifier
        if key.startswith(('head', 'fc_norm', 'pre_logits', 'dist_token',
                           'data_preprocessor')):
            continue
        if is_mmpretrain:
            if key.startswith('layers.'):
                key = 'blocks.' + key[len('layers.'):]
            elif key.startswith('ln1.'):
                key = 'norm.' + key[len('ln1.'):]
            key = '.' + key
            for src, dst in _MMPRETRAIN_RENAMES:
                key = key.replace(src, dst)
            key = key[1:]
        out[key] = value
    return out


@MODELS.register_module()
class ViTPyramid(BaseModule):
    """Plain ViT + simple feature pyramid for Mask2Former video models.

    Returns four maps at strides 4/8/16/32 (the input of Mask2Former's pixel
    decoder). Loads DeiT/ViT checkpoints with timm or mmpretrain key names
    (``init_cfg=dict(type='Pretrained', checkpoint=PATH)``) and interpolates
    the position embedding to any frame size (at load time to ``img_size``
    and at run time to the actual grid).

    Args:
        arch (str | dict): A key of ``arch_zoo`` ('tiny', 'small', 'base' and
            aliases) or a dict with ``embed_dims``, ``num_layers``,
            ``num_heads``, ``feedforward_channels``. Defaults to 'small'.
        img_size (int | tuple): Grid size the position embedding is stored
            for (the pre-training size). Defaults to 224.
        patch_size (int): Patch size. Defaults to 16.
        in_channels (int): Input channels. Defaults to 3.
        qkv_bias (bool): Bias on qkv. Defaults to True.
        drop_path_rate (float): Stochastic depth, linearly increasing.
            Defaults to 0.1.
        with_cls_token (bool): Keep a class token (DeiT checkpoints have
            one). Defaults to True.
        out_channels (int, optional): Channels of each pyramid level; None
            keeps C/4, C/2, C, C. Defaults to 256.
        frozen_stages (int): Freeze patch embedding (>= 0) and the first
            ``frozen_stages`` blocks. -1 freezes nothing. Defaults to -1.
        fused_attn (bool): Use fused SDPA attention. Defaults to True.
        interpolate_mode (str): Position-embedding interpolation.
            Defaults to 'bicubic'.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=...)``
            loads a ViT checkpoint into the encoder. Defaults to None.
    """
    arch_zoo = {
        **dict.fromkeys(['t', 'tiny', 'deit-t', 'deit-tiny'], {
            'embed_dims': 192,
            'num_layers': 12,
            'num_heads': 3,
            'feedforward_channels': 768
        }),
        **dict.fromkeys(['s', 'small', 'deit-s', 'deit-small'], {
            'embed_dims': 384,
            'num_layers': 12,
            'num_heads': 6,
            'feedforward_channels': 1536
        }),
        **dict.fromkeys(['b', 'base', 'deit-b', 'deit-base'], {
            'embed_dims': 768,
            'num_layers': 12,
            'num_heads': 12,
            'feedforward_channels': 3072
        }),
    }
    num_extra_tokens = 1  # cls token

    def __init__(self,
                 arch='small',
                 img_size=224,
                 patch_size: int = 16,
                 in_channels: int = 3,
                 qkv_bias: bool = True,
                 drop_path_rate: float = 0.1,
                 with_cls_token: bool = True,
                 out_channels: Optional[int] = 256,
                 frozen_stages: int = -1,
                 fused_attn: bool = True,
                 interpolate_mode: str = 'bicubic',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(arch, str):
            key = arch.lower()
            if key not in self.arch_zoo:
                raise ValueError(
                    f'ViTPyramid: unknown arch {arch!r}; choose one of '
                    f'{sorted(set(self.arch_zoo))} or pass a dict with keys '
                    'embed_dims, num_layers, num_heads, feedforward_channels')
            self.arch_settings = dict(self.arch_zoo[key])
        elif isinstance(arch, dict):
            need = {'embed_dims', 'num_layers', 'num_heads',
                    'feedforward_channels'}
            missing = need - set(arch)
            if missing:
                raise ValueError(f'ViTPyramid: custom arch misses keys '
                                 f'{sorted(missing)}; it needs {sorted(need)}')
            self.arch_settings = dict(arch)
        else:
            raise TypeError(f'ViTPyramid: arch must be a str or dict, '
                            f'got {type(arch).__name__}')
        if not 0 <= drop_path_rate < 1:
            raise ValueError(f'ViTPyramid: drop_path_rate must be in [0, 1), '
                             f'got {drop_path_rate}')
        self.embed_dims = self.arch_settings['embed_dims']
        self.num_layers = self.arch_settings['num_layers']
        if not -1 <= frozen_stages <= self.num_layers:
            raise ValueError(f'ViTPyramid: frozen_stages must be in '
                             f'[-1, {self.num_layers}], got {frozen_stages}')
        self.patch_size = patch_size
        img_size = (img_size, img_size) if isinstance(img_size, int) \
            else tuple(img_size)
        self.patch_grid = (img_size[0] // patch_size,
                           img_size[1] // patch_size)
        self.with_cls_token = with_cls_token
        self.num_extra_tokens = 1 if with_cls_token else 0
        self.interpolate_mode = interpolate_mode
        self.frozen_stages = frozen_stages

        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(
            in_channels, self.embed_dims, patch_size, patch_size)
        if with_cls_token:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, self.embed_dims))
        num_pos = self.patch_grid[0] * self.patch_grid[1]
        self.pos_embed = nn.Parameter(
            torch.zeros(1, num_pos + self.num_extra_tokens, self.embed_dims))
        dpr = torch.linspace(0, drop_path_rate, self.num_layers).tolist()
        self.blocks = nn.ModuleList([
            TransformerBlock(
                self.embed_dims,
                self.arch_settings['num_heads'],
                self.arch_settings['feedforward_channels'],
                qkv_bias=qkv_bias,
                drop_path=dpr[i],
                fused_attn=fused_attn) for i in range(self.num_layers)
        ])
        self.norm = nn.LayerNorm(self.embed_dims, eps=1e-6)
        self.pyramid = SimplePyramid(self.embed_dims, out_channels)
        self.out_channels = self.pyramid.out_channels
        self._register_load_state_dict_pre_hook(self._prepare_pos_embed)
        self._freeze_stages()

    # ------------------------------------------------------------------ init
    def init_weights(self) -> None:
        if (isinstance(self.init_cfg, dict)
                and self.init_cfg.get('type') == 'Pretrained'):
            self._load_pretrained(self.init_cfg['checkpoint'],
                                  self.init_cfg.get('prefix'))
            self._is_init = True
            return
        super().init_weights()
        if self.init_cfg is None:
            nn.init.trunc_normal_(self.pos_embed, std=.02)
            if self.with_cls_token:
                nn.init.trunc_normal_(self.cls_token, std=.02)
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    nn.init.trunc_normal_(m.weight, std=.02)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)

    def _load_pretrained(self, path: str,
                         prefix: Optional[str]) -> Tuple[list, list]:
        """Load a ViT checkpoint (timm / DeiT / mmpretrain names) with the
        position embedding resized; returns (missing, unexpected) keys
        (the pyramid's own keys are not counted as missing)."""
        ckpt = CheckpointLoader.load_checkpoint(path, map_location='cpu')
        for key in ('state_dict', 'model', 'module'):
            if isinstance(ckpt, dict) and key in ckpt:
                ckpt = ckpt[key]
                break
        if prefix:
            prefix = prefix if prefix.endswith('.') else prefix + '.'
            ckpt = {k[len(prefix):]: v for k, v in ckpt.items()
                    if k.startswith(prefix)}
        return self._load_vit_state(ckpt, path)

    def _load_vit_state(self, ckpt: Dict[str, torch.Tensor],
                        source: str) -> Tuple[list, list]:
        """Load unwrapped ViT weights (any of the accepted key styles)."""
        logger = MMLogger.get_current_instance()
        state = convert_vit_state_dict(ckpt)
        missing, unexpected = self.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith('pyramid.')]
        name = type(self).__name__
        logger.info(f'{name}: loaded {len(state)} tensors from {source}')
        if missing:
            logger.warning(f'{name}: missing keys {missing}')
        if unexpected:
            logger.warning(f'{name}: unexpected keys {unexpected}')
        return missing, unexpected

    def _prepare_pos_embed(self, state_dict, prefix, *args, **kwargs) -> None:
        """Resize a stored position embedding of another grid on load."""
        name = prefix + 'pos_embed'
        if name not in state_dict:
            return
        ckpt = state_dict[name]
        if ckpt.shape == self.pos_embed.shape:
            return
        ckpt_extra = self.num_extra_tokens
        n = ckpt.shape[1] - ckpt_extra
        if n != int(math.isqrt(n))**2:
            # a checkpoint without cls position (e.g. some timm models)
            ckpt_extra = 0
            n = ckpt.shape[1]
        side = math.isqrt(n)
        if side * side != n:
            raise ValueError(f'{type(self).__name__}: cannot resize '
                             f'pos_embed of shape '
                             f'{tuple(ckpt.shape)} (grid is not square)')
        resized = resize_pos_embed(ckpt, (side, side), self.patch_grid,
                                   ckpt_extra, self.interpolate_mode)
        if ckpt_extra == 0 and self.num_extra_tokens:
            # The model may already sit on the GPU (mmengine moves it before
            # init_weights) while the checkpoint is on the CPU: build the
            # result on the parameter's device and dtype (load_state_dict
            # copies it into the parameter anyway).
            own_cls = self.pos_embed[:, :1].detach()
            resized = torch.cat([own_cls, resized.to(own_cls)], 1)
        MMLogger.get_current_instance().info(
            f'{type(self).__name__}: resized pos_embed {tuple(ckpt.shape)} -> '
            f'{tuple(resized.shape)}')
        state_dict[name] = resized

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        frozen = [self.patch_embed, *self.blocks[:self.frozen_stages]]
        for module in frozen:
            module.eval()
            for p in module.parameters():
                p.requires_grad = False
        self.pos_embed.requires_grad = False
        if self.with_cls_token:
            self.cls_token.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        return self

    # --------------------------------------------------------------- forward
    def embed(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """Patch-embed images and add position embeddings.

        Args:
            x (Tensor): Images (B, 3, H, W), H and W multiples of the patch.

        Returns:
            tuple: tokens (B, extra + h*w, C) and the grid (h, w).
        """
        if x.shape[-2] % self.patch_size or x.shape[-1] % self.patch_size:
            raise ValueError(
                f'ViTPyramid: input size {tuple(x.shape[-2:])} is not a '
                f'multiple of patch_size {self.patch_size}; pad the input '
                '(data_preprocessor pad_size_divisor)')
        x = self.patch_embed.proj(x)
        hw = (x.shape[2], x.shape[3])
        x = x.flatten(2).transpose(1, 2)
        pos = resize_pos_embed(self.pos_embed, self.patch_grid, hw,
                               self.num_extra_tokens, self.interpolate_mode)
        if self.with_cls_token:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1)
        return x + pos, hw

    def tokens_to_featmap(self, x: torch.Tensor,
                          hw: Tuple[int, int]) -> torch.Tensor:
        """Final norm, drop extra tokens, (B, N, C) -> (B, C, h, w)."""
        x = self.norm(x)[:, self.num_extra_tokens:]
        return x.transpose(1, 2).reshape(x.shape[0], -1, *hw)

    def forward_blocks(self, x: torch.Tensor,
                       hw: Tuple[int, int]) -> torch.Tensor:
        """Run all encoder blocks (the seam wrappers override)."""
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        tokens, hw = self.embed(x)
        tokens = self.forward_blocks(tokens, hw)
        return tuple(self.pyramid(self.tokens_to_featmap(tokens, hw)))

    def get_layer_depth(self, param_name: str, prefix: str = ''):
        """Layer id of a parameter for layer-wise learning-rate decay.

        Args:
            param_name (str): Parameter name.
            prefix (str): Prefix of the backbone in the model, e.g.
                'backbone.'. Defaults to ''.

        Returns:
            tuple[int, int]: (layer depth, total depth).
        """
        num_layers = self.num_layers + 2
        if not param_name.startswith(prefix):
            return num_layers - 1, num_layers
        name = param_name[len(prefix):]
        if name.startswith(('cls_token', 'pos_embed', 'patch_embed')):
            return 0, num_layers
        if name.startswith('blocks.'):
            return int(name.split('.')[1]) + 1, num_layers
        return num_layers - 1, num_layers
