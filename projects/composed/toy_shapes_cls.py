"""Toy-shapes classification crops: the P3B task of the toy composed pipeline.

64x64 crops cut from toy videos (:func:`mmsparse.datasets.toy_ytvis.
render_toy_video`, the generator of the toy VIS data, with other seeds): one
crop around each object that is mostly visible in a frame (class = its
shape: circle / square / triangle) and one crop of pure background per
frame (class ``background``). Written as mmpretrain ``CustomDataset`` class
folders::

    <out>/train/<class>/<video>_<frame>_<k>.png
    <out>/test/<class>/...

    python projects/composed/toy_shapes_cls.py --out data/toy_shapes_cls
"""
import argparse
import os
import os.path as osp

import numpy as np
from PIL import Image

from mmsparse.datasets.toy_ytvis import TOY_YTVIS_CLASSES, render_toy_video

CLASSES = TOY_YTVIS_CLASSES + ('background', )


def _crop_box(cx, cy, size, height, width):
    x0 = int(np.clip(round(cx - size / 2), 0, width - size))
    y0 = int(np.clip(round(cy - size / 2), 0, height - size))
    return x0, y0


def write_split(out: str, num_videos: int, seed: int, size: int = 64,
                num_frames: int = 4, min_visible: float = 0.6) -> dict:
    """Render ``num_videos`` toy videos and write their crops.

    Returns:
        dict: number of crops per class.
    """
    rng = np.random.default_rng(seed)
    counts = dict.fromkeys(CLASSES, 0)
    for name in CLASSES:
        os.makedirs(osp.join(out, name), exist_ok=True)
    for v in range(num_videos):
        video = render_toy_video(rng, num_frames=num_frames)
        T, H, W = video.frames.shape[:3]
        union = video.amodal_masks.any(0)
        for t in range(T):
            frame = video.frames[t]
            for k, obj in enumerate(video.objects):
                amodal = video.amodal_masks[k, t].sum()
                if amodal == 0 or video.visible_masks[k, t].sum() < \
                        min_visible * amodal:
                    continue
                jitter = rng.uniform(-6, 6, size=2)
                cx, cy = obj.centers[t] + jitter
                x0, y0 = _crop_box(cx, cy, size, H, W)
                crop = frame[y0:y0 + size, x0:x0 + size]
                Image.fromarray(crop).save(
                    osp.join(out, obj.name, f'{v:05d}_{t}_{k}.png'))
                counts[obj.name] += 1
            for _ in range(10):  # a crop without any object pixel
                x0 = int(rng.integers(0, W - size + 1))
                y0 = int(rng.integers(0, H - size + 1))
                if not union[t, y0:y0 + size, x0:x0 + size].any():
                    crop = frame[y0:y0 + size, x0:x0 + size]
                    Image.fromarray(crop).save(
                        osp.join(out, 'background', f'{v:05d}_{t}.png'))
                    counts['background'] += 1
                    break
    return counts


def make_toy_shapes_cls(out: str, train_videos: int = 300,
                        test_videos: int = 60, seed: int = 100) -> dict:
    """Write the train and test splits (seeds ``seed`` and ``seed + 1``;
    the toy VIS data uses small seeds, 0/1)."""
    return dict(
        train=write_split(osp.join(out, 'train'), train_videos, seed),
        test=write_split(osp.join(out, 'test'), test_videos, seed + 1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='data/toy_shapes_cls')
    parser.add_argument('--train-videos', type=int, default=300)
    parser.add_argument('--test-videos', type=int, default=60)
    parser.add_argument('--seed', type=int, default=100)
    args = parser.parse_args()
    counts = make_toy_shapes_cls(args.out, args.train_videos,
                                 args.test_videos, args.seed)
    print(counts)


if __name__ == '__main__':
    main()
