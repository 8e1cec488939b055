"""Find the sub-blocks of a ViT, whichever implementation it is.

P3B works on six tensors of every encoder block: the attention's
``(norm, qkv, proj)`` and the MLP's ``(norm, fc1, fc2)``. :func:`vit_view`
maps a backbone to that view so the algorithm does not care which ViT it
is. Supported (duck-typed, nothing imported):

- mmpretrain ``VisionTransformer`` (DeiT-T/S/B): ``layers`` of
  ``TransformerEncoderLayer(ln1, attn(qkv, proj), ln2, ffn.layers)``;
- timm-style blocks (timm ``VisionTransformer``, mmsparse ``ViTPyramid``):
  ``blocks`` of ``Block(norm1, attn(qkv, proj), norm2, mlp(fc1, act, fc2))``.
"""
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
import torch.nn as nn

#: Activations a slim block can rebuild from a name.
ACTIVATIONS = {'GELU': nn.GELU, 'ReLU': nn.ReLU, 'SiLU': nn.SiLU}


@dataclass
class BlockView:
    """The parts of one encoder block that P3B gates and slices.

    Args:
        layer (nn.Module): The encoder block.
        norm1 (nn.LayerNorm): Norm in front of the attention.
        qkv (nn.Linear): Fused q/k/v projection.
        proj (nn.Linear): Attention output projection.
        norm2 (nn.LayerNorm): Norm in front of the MLP.
        fc1 (nn.Linear): MLP input projection.
        act (nn.Module): MLP activation.
        fc2 (nn.Linear): MLP output projection.
        num_heads (int): Attention heads (all kept).
        head_dims (int): Dense per-head width.
        qk_scale (float): Attention logit scale (kept after slicing).
        gamma1 (Tensor, optional): Layer scale of the attention branch.
        gamma2 (Tensor, optional): Layer scale of the MLP branch.
        drop_path (tuple): Stochastic-depth rates (attention, MLP).
    """
    layer: nn.Module
    norm1: nn.LayerNorm
    qkv: nn.Linear
    proj: nn.Linear
    norm2: nn.LayerNorm
    fc1: nn.Linear
    act: nn.Module
    fc2: nn.Linear
    num_heads: int
    head_dims: int
    qk_scale: float
    gamma1: Optional[torch.Tensor] = None
    gamma2: Optional[torch.Tensor] = None
    drop_path: Tuple[float, float] = (0.0, 0.0)

    @property
    def embed_dims(self) -> int:
        return self.qkv.in_features

    @property
    def hidden_dims(self) -> int:
        return self.fc1.out_features

    @property
    def qkv_bias(self) -> bool:
        return self.qkv.bias is not None

    @property
    def act_name(self) -> str:
        """Name of the activation in :data:`ACTIVATIONS`."""
        for name, cls in ACTIVATIONS.items():
            if type(self.act) is cls:
                if name == 'GELU' and self.act.approximate != 'none':
                    break
                return name
        raise TypeError(
            f'P3B: unsupported MLP activation {self.act!r}; supported: '
            f'{sorted(ACTIVATIONS)} (GELU without approximation)')


@dataclass
class ViTView:
    """A backbone seen as a list of blocks.

    Args:
        backbone (nn.Module): The backbone.
        blocks (list[BlockView]): Its encoder blocks in order.
        container (str): Attribute holding the blocks ('layers'/'blocks').
        num_extra_tokens (int): Leading tokens not on the patch grid.
        style (str): 'mmpretrain' or 'timm'.
    """
    backbone: nn.Module
    blocks: List[BlockView]
    container: str
    num_extra_tokens: int
    style: str

    @property
    def embed_dims(self) -> int:
        return self.blocks[0].embed_dims


def _drop_prob(module: Optional[nn.Module]) -> float:
    if module is None:
        return 0.0
    return float(getattr(module, 'drop_prob', 0.0) or 0.0)


def _layer_scale(module: Optional[nn.Module]) -> Optional[torch.Tensor]:
    if module is None or isinstance(module, nn.Identity):
        return None
    for name in ('weight', 'gamma'):
        value = getattr(module, name, None)
        if isinstance(value, torch.Tensor):
            return value
    raise TypeError(f'P3B: unsupported layer scale module {module!r}')


def _check_linear(name: str, module, found: str) -> None:
    # subclasses such as mmcv's Linear (empty-input handling) compute the same
    if not isinstance(module, nn.Linear):
        raise TypeError(f'P3B: expected {name} to be nn.Linear in {found}, '
                        f'got {type(module).__name__}')


def _check_norm(name: str, module, found: str) -> None:
    if not isinstance(module, nn.LayerNorm) or not module.elementwise_affine:
        raise TypeError(f'P3B: expected {name} to be an affine nn.LayerNorm '
                        f'in {found}, got {module!r}')


def _mmpretrain_block(layer: nn.Module) -> BlockView:
    found = f'{type(layer).__name__} (mmpretrain style)'
    attn, ffn = layer.attn, layer.ffn
    if type(layer).__name__ != 'TransformerEncoderLayer':
        raise TypeError(f'P3B: unsupported encoder layer {found}')
    if type(attn).__name__ != 'MultiheadAttention' or getattr(
            attn, 'v_shortcut', False) or attn.input_dims != attn.embed_dims:
        raise TypeError(f'P3B: unsupported attention {type(attn).__name__} '
                        f'in {found} (needs MultiheadAttention without '
                        'v_shortcut)')
    if type(ffn).__name__ != 'FFN' or len(ffn.layers) != 3 or not getattr(
            ffn, 'add_identity', True):
        raise TypeError(f'P3B: unsupported FFN {type(ffn).__name__} in '
                        f'{found} (needs mmcv FFN with num_fcs=2)')
    fc1, act = ffn.layers[0][0], ffn.layers[0][1]
    fc2 = ffn.layers[1]
    for name, mod in (('attn.qkv', attn.qkv), ('attn.proj', attn.proj),
                      ('fc1', fc1), ('fc2', fc2)):
        _check_linear(name, mod, found)
    _check_norm('ln1', layer.ln1, found)
    _check_norm('ln2', layer.ln2, found)
    return BlockView(
        layer=layer, norm1=layer.ln1, qkv=attn.qkv, proj=attn.proj,
        norm2=layer.ln2, fc1=fc1, act=act, fc2=fc2,
        num_heads=attn.num_heads, head_dims=attn.head_dims,
        qk_scale=attn.head_dims**-0.5,
        gamma1=_layer_scale(attn.gamma1),
        gamma2=_layer_scale(getattr(ffn, 'gamma2', None)),
        drop_path=(_drop_prob(attn.out_drop),
                   _drop_prob(ffn.dropout_layer)))


def _timm_block(layer: nn.Module) -> BlockView:
    found = f'{type(layer).__name__} (timm style)'
    attn, mlp = layer.attn, layer.mlp
    for name in ('q_norm', 'k_norm', 'norm'):
        sub = getattr(attn if name != 'norm' else mlp, name, None)
        if sub is not None and not isinstance(sub, nn.Identity):
            raise TypeError(f'P3B: unsupported {name} {sub!r} in {found}')
    for name, mod in (('attn.qkv', attn.qkv), ('attn.proj', attn.proj),
                      ('mlp.fc1', mlp.fc1), ('mlp.fc2', mlp.fc2)):
        _check_linear(name, mod, found)
    _check_norm('norm1', layer.norm1, found)
    _check_norm('norm2', layer.norm2, found)
    head_dims = getattr(attn, 'head_dims', None) or getattr(
        attn, 'head_dim', None) or attn.qkv.out_features // 3 // attn.num_heads
    drop1 = getattr(layer, 'drop_path1', getattr(layer, 'drop_path', None))
    drop2 = getattr(layer, 'drop_path2', getattr(layer, 'drop_path', None))
    return BlockView(
        layer=layer, norm1=layer.norm1, qkv=attn.qkv, proj=attn.proj,
        norm2=layer.norm2, fc1=mlp.fc1, act=mlp.act, fc2=mlp.fc2,
        num_heads=attn.num_heads, head_dims=head_dims,
        qk_scale=float(getattr(attn, 'scale', head_dims**-0.5)),
        gamma1=_layer_scale(getattr(layer, 'ls1', None)),
        gamma2=_layer_scale(getattr(layer, 'ls2', None)),
        drop_path=(_drop_prob(drop1), _drop_prob(drop2)))


def find_backbone(model: nn.Module) -> nn.Module:
    """The ViT inside a task model (``model.backbone``) or the model."""
    backbone = getattr(model, 'backbone', None)
    return backbone if isinstance(backbone, nn.Module) else model


def vit_view(model: nn.Module) -> ViTView:
    """Map a ViT (or a model with a ViT ``backbone``) to a :class:`ViTView`.

    Args:
        model (nn.Module): An mmpretrain ``ImageClassifier`` or any model
            whose ``backbone`` (or itself) is a supported ViT.

    Returns:
        ViTView: The blocks and their parts.

    Raises:
        TypeError: If no supported ViT is found; the message names what was
            found.
    """
    backbone = find_backbone(model)
    layers = getattr(backbone, 'layers', None)
    blocks = getattr(backbone, 'blocks', None)
    if isinstance(layers, nn.ModuleList) and len(layers) and all(
            hasattr(b, 'ln1') and hasattr(b, 'ffn') for b in layers):
        views = [_mmpretrain_block(b) for b in layers]
        container, style = 'layers', 'mmpretrain'
    elif isinstance(blocks, (nn.ModuleList, nn.Sequential)) and len(
            blocks) and all(
                hasattr(b, 'norm1') and hasattr(b, 'mlp') for b in blocks):
        views = [_timm_block(b) for b in blocks]
        container, style = 'blocks', 'timm'
    else:
        children = [type(m).__name__ for m in backbone.children()][:8]
        raise TypeError(
            'P3B supports ViT backbones with mmpretrain-style `layers` '
            '(TransformerEncoderLayer: ln1, attn.qkv, attn.proj, ln2, '
            'ffn.layers) or timm-style `blocks` (norm1, attn.qkv, attn.proj, '
            f'norm2, mlp.fc1, mlp.fc2); found {type(backbone).__name__} '
            f'with children {children}')
    extra = getattr(backbone, 'num_extra_tokens', None)
    if extra is None:
        extra = int(getattr(backbone, 'cls_token', None) is not None)
    return ViTView(backbone=backbone, blocks=views, container=container,
                   num_extra_tokens=int(extra), style=style)
