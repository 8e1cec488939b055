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
