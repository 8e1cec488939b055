"""A ViTPyramid built from a P3B export: slim ViT blocks for a VIS model.

Glandorf & Rosenhahn, "Pruning by Block Benefit", https://arxiv.org/abs/2506.23675.

P3B prunes a ViT on classification (where its probes and class labels
live) and exports the slim architecture and weights
(:mod:`mmsparse.models.backbones.p3b_export`). :class:`P3BViTPyramid`
turns that export into the backbone of Mask2Former-VIS: the per-block kept
widths come from the export file (the architecture is data, not code), the
weights are loaded as a dense DeiT checkpoint would be (position embedding
interpolated to ``img_size``, extra keys such as the classifier head
dropped), and the seams of :class:`ViTPyramid` (``embed``, ``blocks[i](x,
attn_mask)``, ``tokens_to_featmap``, ``pyramid``) are unchanged, so
``VPPBackbone`` wraps it as it wraps the dense one.
"""
from typing import Optional

import numpy as np
from mmengine.logging import MMLogger
from mmengine.model import ModuleList

from mmsparse.p3b.slim import SlimBlock
from mmsparse.registry import MODELS
from .p3b_export import load_export_checkpoint, read_p3b_export
from .slim_vit import SlimViTPyramid

_FROM_EXPORT = ('arch', 'patch_size', 'qkv_bias', 'with_cls_token',
                'slim_arch')


@MODELS.register_module()
class P3BViTPyramid(SlimViTPyramid):
    """ViT + simple pyramid with the slim blocks of a P3B export.

    The dense architecture (``arch``, ``patch_size``, qkv bias, class token,
    activation, norm eps) and the kept widths per block are read from the
    export's ``slim_model.py`` (its ``slim_arch``; the checkpoint meta
    ``p3b_slim_arch`` when there is no config). ``init_weights`` loads the
    export's weights; a later ``load_from`` / resume of the task model
    overrides them as usual.

    Args:
        export (str): The folder ``P3BHook`` exported to
            (``<work_dir>/p3b``), or its ``slim_model.pth`` /
            ``slim_model.py``.
        img_size (int | tuple, optional): Grid size the position embedding
            is kept for (interpolated once at load; at run time to the
            actual grid). None keeps the export's pre-training size.
            Defaults to None.
        checkpoint (str, optional): Weights to load instead of the
            export's ``slim_model.pth``, e.g. the checkpoint of the slim
            fine-tuning run (``<work_dir>/p3b/finetune.py``); any file with
            the slim model's key names. Defaults to None.
        arch (dict, optional): Dense arch, only for an export without
            ``slim_model.py``. Defaults to None.
        load_weights (bool): Load the export's weights in ``init_weights``
            (False: random init, e.g. to benchmark). Ignored when
            ``init_cfg`` is given. Defaults to True.
        **kwargs: Other arguments of :class:`ViTPyramid`
            (``drop_path_rate``, ``out_channels``, ``frozen_stages``,
            ``interpolate_mode``, ``init_cfg``). ``patch_size``,
            ``qkv_bias``, ``with_cls_token`` and ``slim_arch`` come from the
            export and must not be given.
    """

    def __init__(self,
                 export: str,
                 img_size=None,
                 checkpoint: Optional[str] = None,
                 arch: Optional[dict] = None,
                 load_weights: bool = True,
                 **kwargs) -> None:
        name = type(self).__name__
        given = sorted(set(kwargs) & set(_FROM_EXPORT))
        if given:
            raise ValueError(f'{name}: {given} come from the P3B export '
                             f'{export!r}; remove them from the config')
        if not isinstance(export, str) or not export:
            raise ValueError(f'{name}: export must be the path of a P3B '
                             f'export, got {export!r}')
        settings = read_p3b_export(export, arch)
        super().__init__(
            slim_arch=settings['slim_arch'],
            arch=settings['arch'],
            img_size=settings['img_size'] if img_size is None else img_size,
            patch_size=settings['patch_size'],
            qkv_bias=settings['qkv_bias'],
            with_cls_token=settings['with_cls_token'],
            **kwargs)
        self.export = export
        self.checkpoint = checkpoint or settings['checkpoint']
        self.load_weights = bool(load_weights)
        if settings['act'] != 'GELU' or settings['eps'] != 1e-6:
            heads = self.arch_settings['num_heads']
            dpr = np.linspace(0, kwargs.get('drop_path_rate', 0.1),
                              self.num_layers)
            self.blocks = ModuleList([
                SlimBlock(self.embed_dims, heads, dims,
                          (self.embed_dims // heads)**-0.5,
                          eps=settings['eps'], act=settings['act'],
                          qkv_bias=settings['qkv_bias'],
                          drop_path=float(dpr[i]))
                for i, dims in enumerate(self.slim_arch)
            ])
            self._freeze_stages()

    def init_weights(self) -> None:
        """Random init (pyramid included), then the export's weights."""
        super().init_weights()
        if self.init_cfg is None and self.load_weights:
            self.load_export_weights()

    def load_export_weights(self) -> None:
        """Load the export's (or ``checkpoint``'s) weights: classifier and
        other non-backbone keys dropped, position embedding resized, every
        block and embedding key required."""
        name = type(self).__name__
        if self.checkpoint is None:
            raise FileNotFoundError(
                f'{name}: the export {self.export!r} has no slim_model.pth '
                'to load; set checkpoint=PATH or load_weights=False (when a '
                'checkpoint of the whole model is loaded afterwards)')
        ckpt = load_export_checkpoint(self.checkpoint)
        meta_arch = (ckpt.get('meta') or {}).get('p3b_slim_arch')
        if meta_arch is not None and list(meta_arch) != self.slim_arch:
            raise ValueError(
                f'{name}: the slim_arch in the meta of {self.checkpoint} '
                f'differs from the one of the export {self.export} (weights '
                'and architecture of different P3B runs?)')
        missing, _ = self._load_vit_state(ckpt['state_dict'],
                                          self.checkpoint)
        if missing:
            raise ValueError(
                f'{name}: {self.checkpoint} lacks '
                f'{missing[:8]}{" ..." if len(missing) > 8 else ""}; '
                'is it the P3B export of this architecture?')
        MMLogger.get_current_instance().info(
            f'{name}: slim ViT from {self.export} '
            f'({sum(p.numel() for p in self.blocks.parameters()):,} block '
            'parameters)')
