"""scikit-learn's bundled handwritten digits as an mmpretrain dataset."""
from typing import List

import numpy as np
from mmpretrain.datasets import BaseDataset

from mmsparse.registry import DATASETS

DIGITS_CLASSES = tuple(str(i) for i in range(10))


@DATASETS.register_module()
class SklearnDigitsDataset(BaseDataset):
    """The UCI optical-recognition handwritten digits bundled with
    scikit-learn (``sklearn.datasets.load_digits``): 1,797 grey images of
    8x8 pixels, 10 classes. No download.

    The split is stratified and deterministic: ``test_ratio`` of every class
    goes to ``split='test'`` (``train_test_split`` with ``split_seed``); with
    the defaults 1,437 training and 360 test images. Pixel values 0..16 are
    scaled to uint8 0..255 and stored as ``img`` of shape (8, 8).

    Args:
        split (str): 'train' or 'test'. Defaults to 'train'.
        test_ratio (float): Fraction of each class in the test split.
            Defaults to 0.2.
        split_seed (int): Seed of the split. Defaults to 0.
        **kwargs: Other arguments of mmpretrain's ``BaseDataset``
            (``pipeline``, ``indices``, ``test_mode``, ...).
    """

    METAINFO = {'classes': DIGITS_CLASSES}

    def __init__(self,
                 split: str = 'train',
                 test_ratio: float = 0.2,
                 split_seed: int = 0,
                 **kwargs) -> None:
        if split not in ('train', 'test'):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if not 0.0 < test_ratio < 1.0:
            raise ValueError(f'test_ratio must be in (0, 1), got {test_ratio}')
        self.split = split
        self.test_ratio = float(test_ratio)
        self.split_seed = int(split_seed)
        kwargs.setdefault('test_mode', split == 'test')
        super().__init__(ann_file='', **kwargs)

    def load_data_list(self) -> List[dict]:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
        digits = load_digits()
        index = np.arange(len(digits.target))
        train_idx, test_idx = train_test_split(
            index,
            test_size=self.test_ratio,
            stratify=digits.target,
            random_state=self.split_seed)
        chosen = np.sort(train_idx if self.split == 'train' else test_idx)
        images = np.clip(np.round(digits.images * (255.0 / 16.0)), 0, 255)
        images = images.astype(np.uint8)
        return [
            dict(img=images[i], gt_label=int(digits.target[i]))
            for i in chosen
        ]

    def extra_repr(self) -> List[str]:
        return [f'Split: \t{self.split}', f'Test ratio: \t{self.test_ratio}']


HARD_SPLITS = ('train', 'val', 'test')


def split_digit_indices(labels: np.ndarray, val_ratio: float,
                        test_ratio: float, split_seed: int) -> dict:
    """Stratified, deterministic train/val/test split of digit indices.

    The test part depends only on ``test_ratio`` and ``split_seed``; the
    validation part is carved from the rest. Returns sorted index arrays.
    """
    from sklearn.model_selection import train_test_split
    index = np.arange(len(labels))
    rest, test = train_test_split(
        index, test_size=test_ratio, stratify=labels,
        random_state=split_seed)
    out = dict(test=np.sort(test))
    if val_ratio > 0:
        train, val = train_test_split(
            rest, test_size=val_ratio / (1.0 - test_ratio),
            stratify=labels[rest], random_state=split_seed)
        out.update(train=np.sort(train), val=np.sort(val))
    else:
        out.update(train=np.sort(rest), val=np.zeros(0, dtype=np.int64))
    return out


def upsample_centered(images: np.ndarray, digit_size: int, img_size: int):
    """8x8 digits (values 0..16) as a (N, 1, img_size, img_size) float tensor in [0, 1]:
    upsampled (bilinear) to ``digit_size`` pixels and centred."""
    import torch
    import torch.nn.functional as F
    x = torch.from_numpy(np.asarray(images, dtype=np.float32) / 16.0)
    x = F.interpolate(x[:, None], size=(digit_size, digit_size),
                      mode='bilinear', align_corners=False).clamp_(0, 1)
    pad = img_size - digit_size
    return F.pad(x, (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2))


def random_pose(canvas, gen, max_rotation: float, scale_range: tuple,
                max_shift: float, base_rotation: float = 0.0):
    """Rotate (``base_rotation`` ± ``max_rotation`` degrees), scale (a factor from
    ``scale_range``) and shift (± ``max_shift`` pixels) each image of ``canvas``
    (N, 1, S, S), drawing angle, scale and shift from ``gen`` in that order."""
    import torch
    import torch.nn.functional as F
    num, size = len(canvas), canvas.shape[-1]

    def uniform(low, high, n=num):
        return low + (high - low) * torch.rand(n, generator=gen)

    angle = (base_rotation + uniform(-max_rotation, max_rotation)) * (
        np.pi / 180.0)
    scale = uniform(*scale_range)
    shift = uniform(-max_shift, max_shift, 2 * num).view(num, 2)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([
        torch.stack([cos, -sin, -2 * shift[:, 0] / size], 1),
        torch.stack([sin, cos, -2 * shift[:, 1] / size], 1)
    ], 1)
    grid = F.affine_grid(theta, list(canvas.shape), align_corners=False)
    return F.grid_sample(canvas, grid, align_corners=False)


def render_hard_digits(images: np.ndarray,
                       source: np.ndarray,
                       distractor: np.ndarray,
                       img_size: int = 16,
                       digit_size: int = 12,
                       max_rotation: float = 30.0,
                       scale_range: tuple = (0.8, 1.15),
                       max_shift: float = 2.5,
                       distractor_prob: float = 0.7,
                       distractor_alpha: tuple = (0.45, 0.85),
                       noise_std: float = 0.25,
                       seed: int = 0) -> np.ndarray:
    """Render hard variants of 8x8 digits (plain torch, deterministic).

    Each output image ``k`` shows digit ``images[source[k]]`` upsampled
    (bilinear) to ``digit_size`` pixels, centred on an ``img_size`` canvas,
    then rotated (±``max_rotation`` degrees), scaled (``scale_range``) and
    shifted (±``max_shift`` pixels); with probability ``distractor_prob`` a
    half of another digit (``images[distractor[k]]``, its own random pose,
    cut along a random line) is overlaid at a random intensity in
    ``distractor_alpha``; finally Gaussian pixel noise (``noise_std``, on the
    [0, 1] ink scale) is added.

    Args:
        images (np.ndarray): (N, 8, 8) digits, values 0..16.
        source (np.ndarray): (K,) index of the digit each output shows.
        distractor (np.ndarray): (K,) index of the distracting digit.
        img_size, digit_size, max_rotation, scale_range, max_shift,
            distractor_prob, distractor_alpha, noise_std: see above.
        seed (int): Seed of all random draws.

    Returns:
        np.ndarray: (K, img_size, img_size) uint8 images.
    """
    import torch
    import torch.nn.functional as F
    gen = torch.Generator().manual_seed(int(seed))
    num = len(source)
    digits = upsample_centered(images, digit_size, img_size)

    def uniform(low, high, n=num):
        return low + (high - low) * torch.rand(n, generator=gen)

    def pose(canvas):
        return random_pose(canvas, gen, max_rotation, scale_range, max_shift)

    out = pose(digits[torch.as_tensor(source, dtype=torch.long)])
    other = pose(digits[torch.as_tensor(distractor, dtype=torch.long)])
    # keep one half of the distractor, cut along a random line through the
    # canvas centre, moved by a random offset (zeros enter at the border)
    ys, xs = torch.meshgrid(
        torch.linspace(-1, 1, img_size), torch.linspace(-1, 1, img_size),
        indexing='ij')
    phi = uniform(0, 2 * np.pi)
    half = (xs[None] * torch.cos(phi)[:, None, None] +
            ys[None] * torch.sin(phi)[:, None, None]) > 0
    offset = torch.randint(-img_size // 3, img_size // 3 + 1, (num, 2),
                           generator=gen).float()
    eye = torch.eye(2).expand(num, 2, 2)
    theta = torch.cat([eye, (-2 * offset / img_size)[:, :, None]], 2)
    grid = F.affine_grid(theta, list(other.shape), align_corners=False)
    piece = F.grid_sample(other * half[:, None], grid, align_corners=False)
    alpha = uniform(*distractor_alpha)
    use = (torch.rand(num, generator=gen) < distractor_prob).float()
    out = torch.maximum(out, (use * alpha)[:, None, None, None] * piece)
    out = out + noise_std * torch.randn(out.shape, generator=gen)
    out = (out.clamp_(0, 1) * 255.0).round_()
    return out[:, 0].to(torch.uint8).numpy()


@DATASETS.register_module()
class HardDigitsDataset(BaseDataset):
    """A harder, larger task made from scikit-learn's bundled digits.

    The 1,797 digits are split (stratified, deterministic) into train /
    val / test digits; every digit of a split yields ``variants`` fixed
    images rendered by :func:`render_hard_digits`: upsampled to
    ``img_size`` (default 16x16), randomly rotated, scaled and shifted,
    overlaid with half of another digit of the same split (a distractor)
    and noised. Variants are deterministic (``seed``, the split and
    ``split_seed``), so a test set of many images is fixed. With the
    defaults: 987 / 270 / 540 digits, 8 / 2 / 2 variants, i.e. 7,896
    training, 540 validation and 1,080 test images (one test image is
    0.093 %). No download.

    Each data info holds ``img`` (uint8, (H, W)), ``gt_label``,
    ``digit_index`` (index into ``load_digits()``; variants of one digit
    share it, for a bootstrap over digits) and ``variant``.

    Args:
        split (str): 'train', 'val' or 'test'. Defaults to 'train'.
        val_ratio (float): Fraction of all digits in ``'val'`` (taken from
            the non-test digits; may be 0). Defaults to 0.15.
        test_ratio (float): Fraction of all digits in ``'test'``.
            Defaults to 0.3.
        split_seed (int): Seed of the split. Defaults to 0.
        variants (int, optional): Images per digit; None means 8 for
            'train', 2 otherwise. Defaults to None.
        seed (int): Seed of the rendering (combined with the split).
            Defaults to 0.
        render_cfg (dict, optional): Keyword arguments of
            :func:`render_hard_digits` (``img_size``, ``noise_std``, ...).
        **kwargs: Other arguments of mmpretrain's ``BaseDataset``.
    """

    METAINFO = {'classes': DIGITS_CLASSES}

    def __init__(self,
                 split: str = 'train',
                 val_ratio: float = 0.15,
                 test_ratio: float = 0.3,
                 split_seed: int = 0,
                 variants: int = None,
                 seed: int = 0,
                 render_cfg: dict = None,
                 **kwargs) -> None:
        name = type(self).__name__
        if split not in HARD_SPLITS:
            raise ValueError(f'{name}: split must be one of {HARD_SPLITS}, '
                             f'got {split!r}')
        if not (0.0 < test_ratio < 1.0 and 0.0 <= val_ratio
                and val_ratio + test_ratio < 1.0):
            raise ValueError(
                f'{name}: test_ratio must be in (0, 1) and val_ratio >= 0 '
                f'with val_ratio + test_ratio < 1, got val_ratio={val_ratio}'
                f', test_ratio={test_ratio}')
        if split == 'val' and val_ratio == 0:
            raise ValueError(f"{name}: split='val' needs val_ratio > 0")
        if variants is None:
            variants = 8 if split == 'train' else 2
        if isinstance(variants, bool) or not isinstance(variants, int) \
                or variants < 1:
            raise ValueError(f'{name}: variants must be an int >= 1, got '
                             f'{variants!r}')
        self.split = split
        self.val_ratio = float(val_ratio)
        self.test_ratio = float(test_ratio)
        self.split_seed = int(split_seed)
        self.variants = variants
        self.seed = int(seed)
        self.render_cfg = dict(render_cfg or {})
        kwargs.setdefault('test_mode', split != 'train')
        super().__init__(ann_file='', **kwargs)

    def load_data_list(self) -> List[dict]:
        from sklearn.datasets import load_digits
        digits = load_digits()
        chosen = split_digit_indices(digits.target, self.val_ratio,
                                     self.test_ratio,
                                     self.split_seed)[self.split]
        source = np.repeat(chosen, self.variants)
        rng = np.random.default_rng(
            [self.seed, self.split_seed, HARD_SPLITS.index(self.split)])
        # a distractor is another digit of the same split, never itself
        offset = rng.integers(1, len(chosen), size=len(source))
        pos = np.repeat(np.arange(len(chosen)), self.variants)
        distractor = chosen[(pos + offset) % len(chosen)]
        render_seed = int(rng.integers(0, 2**31 - 1))
        images = render_hard_digits(
            digits.images, source, distractor, seed=render_seed,
            **self.render_cfg)
        variant = np.tile(np.arange(self.variants), len(chosen))
        return [
            dict(img=images[k], gt_label=int(digits.target[source[k]]),
                 digit_index=int(source[k]), variant=int(variant[k]))
            for k in range(len(source))
        ]

    def extra_repr(self) -> List[str]:
        return [f'Split: \t{self.split}',
                f'Variants per digit: \t{self.variants}']
