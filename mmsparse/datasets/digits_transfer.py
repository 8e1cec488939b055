"""Two tasks from scikit-learn's digits, for small transfer experiments."""
from typing import List, Sequence

import numpy as np

from mmsparse.registry import DATASETS
from .digits import SklearnDigitsDataset, random_pose, upsample_centered

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


#: Default look of the shifted target domain of :class:`ShiftedDigitsDataset`.
TARGET_SHIFT = dict(base_rotation=90.0, max_rotation=10.0,
                    scale_range=(0.8, 1.05), max_shift=1.0, invert=True,
                    noise_std=0.1)
SHIFTED_SPLITS = ('train', 'test')


def render_shifted_digits(images: np.ndarray,
                          img_size: int = 16,
                          digit_size: int = 12,
                          base_rotation: float = 0.0,
                          max_rotation: float = 0.0,
                          scale_range: tuple = (1.0, 1.0),
                          max_shift: float = 0.0,
                          invert: bool = False,
                          noise_std: float = 0.0,
                          seed: int = 0) -> np.ndarray:
    """Render 8x8 digits (values 0..16) as ``img_size`` grey images.

    Each digit is upsampled (bilinear) to ``digit_size`` pixels, centred,
    rotated by ``base_rotation`` ± ``max_rotation`` degrees, scaled (a
    factor drawn from ``scale_range``), shifted (± ``max_shift`` pixels),
    optionally inverted (dark ink on a bright background), and Gaussian
    noise (``noise_std`` on the [0, 1] scale) is added. Deterministic given
    ``seed``; with the defaults the plain upsampled digit.

    Returns:
        np.ndarray: (N, img_size, img_size) uint8.
    """
    import torch
    gen = torch.Generator().manual_seed(int(seed))
    x = random_pose(upsample_centered(images, digit_size, img_size), gen,
                    max_rotation, scale_range, max_shift, base_rotation)
    if invert:
        x = 1.0 - x
    if noise_std > 0:
        x = x + noise_std * torch.randn(x.shape, generator=gen)
    x = (x.clamp_(0, 1) * 255.0).round_()
    return x[:, 0].to(torch.uint8).numpy()


@DATASETS.register_module()
class ShiftedDigitsDataset(SklearnDigitsDataset):
    """A class subset of scikit-learn's digits, plain or strongly shifted,
    with fixed rendered variants (a test set of > 1,000 images).

    The digits of ``classes`` are split per class (stratified,
    deterministic, ``test_ratio`` / ``split_seed``) and every digit of the
    split yields ``variants`` images rendered by
    :func:`render_shifted_digits` with ``shift`` (None = plain upsampled
    grey digits). With ``classes=(5, 6, 7, 8, 9)``, ``test_ratio=0.4`` and
    3 test variants: 537 training and 359 test digits, 1,077 test images
    (one image = 0.093 %). Labels are re-numbered 0..len(classes)-1. No
    download.

    Each data info holds ``img`` (uint8 (H, W)), ``gt_label``,
    ``digit_index`` (index into ``load_digits()``: variants of one digit
    share it, for a bootstrap over digits) and ``variant``.

    Args:
        classes (Sequence[int]): Digits to keep. Defaults to (5, 6, 7, 8, 9).
        split (str): 'train' or 'test'. Defaults to 'train'.
        test_ratio (float): Fraction of each class in 'test'; 0 puts every
            digit in 'train'. Defaults to 0.4.
        split_seed (int): Seed of the split. Defaults to 0.
        variants (int): Rendered images per digit. Defaults to 1.
        shift (dict, optional): Keyword arguments of
            :func:`render_shifted_digits` (``base_rotation``, ``invert``,
            ``noise_std``, ...); None = plain. ``'target'`` =
            :data:`TARGET_SHIFT`. Defaults to None.
        img_size (int): Output side, a multiple of 8. Defaults to 16.
        seed (int): Seed of the rendering (combined with the split).
            Defaults to 0.
        **kwargs: Other arguments of mmpretrain's ``BaseDataset``.
    """

    def __init__(self,
                 classes: Sequence[int] = (5, 6, 7, 8, 9),
                 split: str = 'train',
                 test_ratio: float = 0.4,
                 split_seed: int = 0,
                 variants: int = 1,
                 shift=None,
                 img_size: int = 16,
                 seed: int = 0,
                 **kwargs) -> None:
        name = type(self).__name__
        classes = tuple(int(c) for c in classes)
        if not classes or len(set(classes)) != len(classes) or not all(
                0 <= c <= 9 for c in classes):
            raise ValueError(f'{name}: classes must be distinct digits 0-9, '
                             f'got {classes!r}')
        if split not in SHIFTED_SPLITS:
            raise ValueError(f'{name}: split must be one of '
                             f'{SHIFTED_SPLITS}, got {split!r}')
        if not 0.0 <= test_ratio < 1.0 or (split == 'test'
                                           and test_ratio == 0):
            raise ValueError(f'{name}: test_ratio must be in [0, 1) (> 0 '
                             f"for split='test'), got {test_ratio}")
        if isinstance(variants, bool) or not isinstance(variants, int) \
                or variants < 1:
            raise ValueError(f'{name}: variants must be an int >= 1, got '
                             f'{variants!r}')
        if shift == 'target':
            shift = TARGET_SHIFT
        if shift is not None and not isinstance(shift, dict):
            raise ValueError(f"{name}: shift must be None, 'target' or a "
                             f'dict, got {shift!r}')
        if img_size < 8 or img_size % 8:
            raise ValueError(f'{name}: img_size must be a positive multiple '
                             f'of 8, got {img_size}')
        self.digits = classes
        self.variants = variants
        self.shift = dict(shift or {})
        self.img_size = img_size
        self.seed = int(seed)
        kwargs.setdefault('metainfo',
                          dict(classes=tuple(str(c) for c in classes)))
        # the parent checks test_ratio in (0, 1); 0 is handled here
        self._all_train = test_ratio == 0
        super().__init__(split=split,
                         test_ratio=test_ratio if test_ratio > 0 else 0.5,
                         split_seed=split_seed, **kwargs)
        self.test_ratio = float(test_ratio)

    def load_data_list(self) -> List[dict]:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
        digits = load_digits()
        index = np.flatnonzero(np.isin(digits.target, self.digits))
        if self._all_train:
            chosen = index
        else:
            train, test = train_test_split(
                index, test_size=self.test_ratio,
                stratify=digits.target[index], random_state=self.split_seed)
            chosen = np.sort(train if self.split == 'train' else test)
        source = np.repeat(chosen, self.variants)
        render_seed = int(np.random.default_rng(
            [self.seed, self.split_seed,
             SHIFTED_SPLITS.index(self.split)]).integers(0, 2**31 - 1))
        images = render_shifted_digits(digits.images[source],
                                       img_size=self.img_size,
                                       seed=render_seed, **self.shift)
        remap = {c: i for i, c in enumerate(self.digits)}
        variant = np.tile(np.arange(self.variants), len(chosen))
        return [
            dict(img=images[k], gt_label=remap[int(digits.target[source[k]])],
                 digit_index=int(source[k]), variant=int(variant[k]))
            for k in range(len(source))
        ]

    def extra_repr(self) -> List[str]:
        return [f'Split: \t{self.split}', f'Classes: \t{self.digits}',
                f'Variants per digit: \t{self.variants}',
                f'Shift: \t{self.shift}']
