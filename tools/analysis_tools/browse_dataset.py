"""Draw the ground truth of a YouTube-VIS-format dataset, one PNG per video.

    python tools/analysis_tools/browse_dataset.py CONFIG [--split train]
        [--num-videos 4] [--max-frames 8] [--output-dir DIR]
        [--cfg-options k=v ...]

Builds the dataset of ``<split>_dataloader`` of the config (its class subset
and filters included, without the augmentation pipeline) and saves, for the
first ``--num-videos`` videos, ``<output-dir>/<video>.png``: up to
``--max-frames`` evenly spaced frames, every instance's mask in the colour of
its track id (the same across frames), and ``#<track id> <class>`` written on
the object and listed in the frame's title. Frames without an instance of the
chosen classes are left out of the training split by the dataset itself.
"""
import argparse
import os
import os.path as osp
from typing import List, Sequence, Tuple

import cv2
import mmcv
import numpy as np
import pycocotools.mask as mask_util
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

import mmsparse  # noqa: F401  (registers mmsparse modules)
from mmsparse.evaluation.functional.ytvis_ap import to_rle
from mmsparse.registry import DATASETS, drop_mmsparse_scope
from mmsparse.utils.drawing import (instance_color, overlay_masks,
                                    save_frame_grid)

SPLITS = ('train', 'val', 'test')


def decode_mask(segm, height: int, width: int) -> np.ndarray:
    """A frame's segmentation (RLE or polygons) as an (H, W) bool mask."""
    rle = to_rle(segm, height, width)
    if rle is None:
        return np.zeros((height, width), bool)
    return mask_util.decode(rle).astype(bool)


def put_label(image: np.ndarray, text: str, mask: np.ndarray, color) -> None:
    """Write ``text`` (white on the track colour) just above ``mask``, or just
    below it when it touches the top of the frame."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return
    font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    h, w = image.shape[:2]
    x = int(np.clip(xs.min(), 0, max(0, w - tw)))
    y = ys.min() - base - 2 if ys.min() - base - 2 - th >= 0 else ys.max() + th + 3
    y = int(np.clip(y, th + 1, h - base - 1))
    cv2.rectangle(image, (x - 1, y - th - 2), (x + tw + 1, y + base),
                  [int(c) for c in color], -1)
    cv2.putText(image, text, (x, y), font, scale, (255, 255, 255), thick, cv2.LINE_AA)


def draw_frame(image: np.ndarray, instances: Sequence[dict],
               classes: Sequence[str]) -> Tuple[np.ndarray, List[str]]:
    """The frame with its instances drawn, and their ``#id class`` names."""
    h, w = image.shape[:2]
    masks, ids, names = [], [], []
    for i, inst in enumerate(instances):
        track = inst.get('instance_id', i + 1)
        label = inst.get('bbox_label')
        name = classes[label] if classes is not None and label is not None \
            and 0 <= label < len(classes) else str(label)
        masks.append(decode_mask(inst.get('mask'), h, w))
        ids.append(track)
        names.append(f'#{track} {name}')
    out = overlay_masks(image, np.array(masks).reshape(-1, h, w), ids)
    for mask, track, name in zip(masks, ids, names):
        put_label(out, name, mask, instance_color(track) * 0.75)
    return out, names


def draw_video(video: dict, classes: Sequence[str], out_file: str, max_frames: int) -> str:
    """Save one video's frames with their ground truth as a PNG grid."""
    frames = video['images']
    if len(frames) > max_frames:
        frames = [frames[int(round(i))] for i in np.linspace(0, len(frames) - 1, max_frames)]
    images, titles = [], []
    for frame in frames:
        image = mmcv.imread(frame['img_path'], channel_order='rgb')
        if image is None:
            raise FileNotFoundError(f'browse_dataset: cannot read {frame["img_path"]}')
        drawn, names = draw_frame(image, frame.get('instances', []), classes)
        images.append(drawn)
        titles.append(f"frame {frame.get('frame_id', '?')}: " + (', '.join(names) or '-'))
    name = osp.basename(osp.dirname(frames[0]['img_path']))
    tracks = {inst.get('instance_id') for frame in video['images']
              for inst in frame.get('instances', [])}
    return save_frame_grid(images, out_file, titles,
                           f'{name}: ground truth, {len(tracks)} track(s), '
                           f"{len(video['images'])} frame(s)")


def build_dataset(cfg: Config, split: str):
    """The config's ``<split>_dataloader`` dataset, without its pipeline."""
    loader = cfg.get(f'{split}_dataloader')
    if loader is None or loader.get('dataset') is None:
        raise ValueError(f'browse_dataset: the config has no {split}_dataloader.dataset')
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    dataset_cfg = loader.dataset.copy()
    dataset_cfg['pipeline'] = []
    return DATASETS.build(dataset_cfg)


def browse(cfg: Config, split: str, num_videos: int, max_frames: int,
           output_dir: str) -> List[str]:
    """Draw the first ``num_videos`` videos of the split; returns the PNGs."""
    dataset = build_dataset(cfg, split)
    classes = dataset.metainfo.get('classes')
    os.makedirs(output_dir, exist_ok=True)
    files = []
    for i in range(min(num_videos, len(dataset))):
        video = dataset.get_data_info(i)
        if 'images' not in video:
            raise TypeError(f'browse_dataset: {type(dataset).__name__} is not a video '
                            "dataset (its items have no 'images')")
        name = osp.basename(osp.dirname(video['images'][0]['img_path']))
        files.append(draw_video(video, classes, osp.join(output_dir, f'{name}.png'),
                                max_frames))
    return files


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--split', default='train', choices=SPLITS)
    parser.add_argument('--num-videos', type=int, default=4)
    parser.add_argument('--max-frames', type=int, default=8)
    parser.add_argument('--output-dir', default=None,
                        help='default: work_dirs/browse_dataset/<config name>/<split>')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    if args.num_videos < 1 or args.max_frames < 1:
        parser.error('--num-videos and --max-frames must be >= 1')
    return args


def main(argv=None) -> List[str]:
    args = parse_args(argv)
    cfg = drop_mmsparse_scope(Config.fromfile(args.config))
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    out = args.output_dir or osp.join('work_dirs', 'browse_dataset',
                                      osp.splitext(osp.basename(args.config))[0], args.split)
    files = browse(cfg, args.split, args.num_videos, args.max_frames, out)
    for f in files:
        print(f)
    return files


if __name__ == '__main__':
    main()
