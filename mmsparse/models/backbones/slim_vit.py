"""ViT backbones whose blocks were physically slimmed by P3B.

Glandorf & Rosenhahn, "Pruning by Block Benefit", https://arxiv.org/abs/2506.23675.

Each block keeps all attention heads but only the kept per-head width and
the kept input / hidden / output dimensions of its attention and MLP
(:class:`mmsparse.p3b.slim.SlimBlock`); a sub-block without input or inner
dimensions adds a constant, one without output dimensions is skipped. Patch
embedding, tokens, position embedding and final norm stay dense, so
everything around the blocks (heads, ``get_layer_depth``, position
embedding resizing, ``out_type``) works as in the dense backbone.

``P3BHook`` writes these configs; the kept indices are buffers that come
with the checkpoint.
"""
from typing import Dict, List, Sequence

import numpy as np
from mmengine.model import ModuleList
from mmpretrain.models.backbones import VisionTransformer

from mmsparse.p3b.gates import GATE_NAMES
from mmsparse.p3b.slim import SlimBlock
from mmsparse.registry import MODELS
from .vit_pyramid import ViTPyramid


def check_slim_arch(slim_arch: Sequence[Dict[str, int]], num_layers: int,
                    embed_dims: int, num_heads: int, hidden_dims: int,
                    owner: str) -> List[Dict[str, int]]:
    """Validate a ``slim_arch`` list against the dense architecture."""
    if not isinstance(slim_arch, (list, tuple)) or len(slim_arch) != \
            num_layers:
        raise ValueError(f'{owner}: slim_arch must be a list of {num_layers} '
                         f'dicts (one per layer), got {slim_arch!r:.200}')
    limits = dict(attn_in=embed_dims, attn_head=embed_dims // num_heads,
                  attn_out=embed_dims, mlp_in=embed_dims,
                  mlp_hidden=hidden_dims, mlp_out=embed_dims)
    out = []
    for i, dims in enumerate(slim_arch):
        if not isinstance(dims, dict) or set(dims) != set(GATE_NAMES):
            raise ValueError(f'{owner}: slim_arch[{i}] must have exactly the '
                             f'keys {GATE_NAMES}, got {dims!r}')
        for key, limit in limits.items():
            if not isinstance(dims[key], int) or not 0 <= dims[key] <= limit:
                raise ValueError(f'{owner}: slim_arch[{i}][{key!r}] must be '
                                 f'an int in [0, {limit}], got {dims[key]!r}')
        out.append(dict(dims))
    return out


@MODELS.register_module()
class SlimVisionTransformer(VisionTransformer):
    """mmpretrain ``VisionTransformer`` with P3B-slimmed blocks.

    Args:
        slim_arch (list[dict]): Kept sizes per layer: ``attn_in`` (input
            dims), ``attn_head`` (width per head), ``attn_out``, ``mlp_in``,
            ``mlp_hidden``, ``mlp_out``.
        act (str): MLP activation ('GELU', 'ReLU', 'SiLU').
            Defaults to 'GELU'.
        **kwargs: The arguments of mmpretrain ``VisionTransformer`` (the
            dense ``arch`` etc.). ``layer_cfgs`` and
            ``layer_scale_init_value`` are not used (layer scales are folded
            into the slim weights).
    """

    def __init__(self, slim_arch: Sequence[Dict[str, int]],
                 act: str = 'GELU', **kwargs) -> None:
        super().__init__(**kwargs)
        heads = self.arch_settings['num_heads']
        arch = check_slim_arch(slim_arch, self.num_layers, self.embed_dims,
                               heads,
                               self.arch_settings['feedforward_channels'],
                               type(self).__name__)
        norm_cfg = kwargs.get('norm_cfg', dict(type='LN', eps=1e-6))
        eps = float(norm_cfg.get('eps', 1e-5))
        dpr = np.linspace(0, kwargs.get('drop_path_rate', 0.),
                          self.num_layers)
        self.slim_arch = arch
        self.layers = ModuleList([
            SlimBlock(self.embed_dims, heads, dims,
                      (self.embed_dims // heads)**-0.5, eps=eps, act=act,
                      qkv_bias=kwargs.get('qkv_bias', True),
                      drop_path=float(dpr[i])) for i, dims in enumerate(arch)
        ])


@MODELS.register_module()
class SlimViTPyramid(ViTPyramid):
    """mmsparse ``ViTPyramid`` with P3B-slimmed blocks.

    Args:
        slim_arch (list[dict]): Kept sizes per block (see
            :class:`SlimVisionTransformer`).
        **kwargs: The arguments of :class:`ViTPyramid`.
    """

    def __init__(self, slim_arch: Sequence[Dict[str, int]], **kwargs) -> None:
        super().__init__(**kwargs)
        heads = self.arch_settings['num_heads']
        arch = check_slim_arch(slim_arch, self.num_layers, self.embed_dims,
                               heads,
                               self.arch_settings['feedforward_channels'],
                               type(self).__name__)
        dpr = np.linspace(0, kwargs.get('drop_path_rate', 0.1),
                          self.num_layers)
        self.slim_arch = arch
        self.blocks = ModuleList([
            SlimBlock(self.embed_dims, heads, dims,
                      (self.embed_dims // heads)**-0.5, eps=1e-6,
                      qkv_bias=kwargs.get('qkv_bias', True),
                      drop_path=float(dpr[i])) for i, dims in enumerate(arch)
        ])
        self._freeze_stages()


#: Dense backbone class -> registered slim type.
SLIM_BACKBONES = {
    VisionTransformer: 'SlimVisionTransformer',
    ViTPyramid: 'SlimViTPyramid',
}
