"""Two tasks from scikit-learn's digits, for small transfer experiments."""
from typing import List, Sequence

import numpy as np

from mmsparse.registry import DATASETS
from .digits import SklearnDigitsDataset

DOMAINS = ('plain', 'shifted')


@DATASETS.register_module()
class TransferDigitsDataset(SklearnDigitsDataset):
    """A class subset of :class:`SklearnDigitsDataset` in one of two domains.

    Used by the P3B transfer experiment: pre-train on digits 0-4 in the
    ``'plain'`` domain, then adapt (and prune) on digits 5-9 in the
    ``'shifted'`` domain, a different task on different-looking images.

    - ``'plain'``: grey digits, as scanned;
    - ``'shifted'``: rotated by 90 degrees, inverted (white background) and
      tinted (the three channels weight the ink differently).

    Images are upsampled (nearest neighbour) to ``img_size`` and stored as
    uint8 (H, W, 3); labels are re-numbered 0..len(classes)-1.

    Args:
        classes (Sequence[int]): Digits to keep. Defaults to (0, 1, 2, 3, 4).
        domain (str): 'plain' or 'shifted'. Defaults to 'plain'.
        img_size (int): Output side, a multiple of 8. Defaults to 16.
        **kwargs: Arguments of :class:`SklearnDigitsDataset` (``split``,
            ``test_ratio``, ``split_seed``, ``pipeline``, ...).
    """

    def __init__(self,
                 classes: Sequence[int] = (0, 1, 2, 3, 4),
                 domain: str = 'plain',
                 img_size: int = 16,
                 **kwargs) -> None:
        classes = tuple(int(c) for c in classes)
        if not classes or len(set(classes)) != len(classes) or not all(
                0 <= c <= 9 for c in classes):
            raise ValueError(f'classes must be distinct digits 0-9, got '
                             f'{classes!r}')
        if domain not in DOMAINS:
            raise ValueError(f'domain must be one of {DOMAINS}, got '
                             f'{domain!r}')
        if img_size < 8 or img_size % 8:
            raise ValueError(f'img_size must be a positive multiple of 8, got '
                             f'{img_size}')
        self.digits = classes
        self.domain = domain
        self.img_size = img_size
        kwargs.setdefault('metainfo',
                          dict(classes=tuple(str(c) for c in classes)))
        super().__init__(**kwargs)

    def load_data_list(self) -> List[dict]:
        remap = {c: i for i, c in enumerate(self.digits)}
        factor = self.img_size // 8
        tint = np.array([1.0, 0.55, 0.25]) if self.domain == 'shifted' \
            else np.ones(3)
        out = []
        for item in super().load_data_list():
            if item['gt_label'] not in remap:
                continue
            img = item['img'].astype(np.float64)
            if self.domain == 'shifted':
                img = 255.0 - np.rot90(img)
            img = np.kron(img, np.ones((factor, factor)))
            img = np.clip(img[..., None] * tint, 0, 255).astype(np.uint8)
            out.append(dict(img=img, gt_label=remap[item['gt_label']]))
        return out
