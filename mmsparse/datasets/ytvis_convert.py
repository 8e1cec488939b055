"""Convert raw YouTube-VIS annotations to the CocoVID json mmdet reads, with a held-out split.

The output is the same as mmdet's ``tools/dataset_converters/youtubevis2coco.py``
(same ids, keys and order: ``file_name`` relative to ``JPEGImages``, image and
annotation ids counting from 1 over the whole split, ``instance_id`` counting
from 1 over the split in the order the tracks first appear, frames without
objects kept), minus its traps:

* the input is validated first (:func:`validate_raw_ytvis`): clear ``ValueError``
  instead of ``KeyError``/``AssertionError``, and missing frame files and masks
  whose size does not match their video are found before training starts;
* polygon and uncompressed-RLE segmentations are written as compressed RLEs
  of the video's height x width (mmdet copies them as they are);
* the closing per-class report tolerates classes without objects and category
  ids that are not 1..N;
* ``valid``/``test`` are converted only if present (without annotations, like
  the official ones, which have none);
* ``heldout_ratio > 0`` additionally writes a video-level split of train that
  keeps its ground truth (``..._train_sub.json`` / ``..._heldout.json``), for
  local evaluation: the official valid/test sets can only be scored by the server.

Layout (``root``)::

    2021: train/instances.json, train/JPEGImages/<video>/<frame>.jpg, valid/..., test/...
    2019: train.json, valid.json, test.json, train/JPEGImages/..., valid/JPEGImages/...

Written to ``out_dir``: ``youtube_vis_{version}_{train,valid,test}.json`` and,
with a held-out split, ``youtube_vis_{version}_{train_sub,heldout}.json``.
"""
import copy
import json
import os
import os.path as osp
from collections import defaultdict
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .ytvis_checks import FileChecker, validate_raw_ytvis
from .ytvis_rle import to_compressed_rle

YTVIS_VERSIONS = ('2019', '2021')
YTVIS_SPLITS = ('train', 'valid', 'test')


def raw_split_paths(root: str, version: str, split: str) -> Tuple[str, str]:
    """Return ``(json_path, jpeg_dir)`` of a raw split in the official layout."""
    if version not in YTVIS_VERSIONS:
        raise ValueError(f'raw_split_paths: version must be one of {YTVIS_VERSIONS}, '
                         f'got {version!r}')
    if split not in YTVIS_SPLITS:
        raise ValueError(f'raw_split_paths: split must be one of {YTVIS_SPLITS}, got {split!r}')
    if version == '2019':
        json_path = osp.join(root, f'{split}.json')
    else:
        json_path = osp.join(root, split, 'instances.json')
    return json_path, osp.join(root, split, 'JPEGImages')


def raw_to_cocovid(raw: Dict, with_annotations: bool = True) -> Dict:
    """Convert a (validated) raw YouTube-VIS dict to CocoVID, as mmdet's converter does.

    Polygons and uncompressed RLEs become compressed RLEs (``counts`` str) of
    the video's height x width; compressed RLEs are copied unchanged.

    Args:
        raw (dict): Raw json (``videos``, ``annotations``, ``categories``).
        with_annotations (bool): Keep the annotations (train). Defaults to True.

    Returns:
        dict: ``categories``, ``videos``, ``images``, ``annotations`` (an empty
        list without annotations).
    """
    out = dict(categories=copy.deepcopy(raw['categories']), videos=[], images=[],
               annotations=[])
    vid_to_anns = defaultdict(list)
    if with_annotations:
        for ann in raw.get('annotations') or []:
            vid_to_anns[ann['video_id']].append(ann)
    img_id = ann_id = instance_id = 1
    for video in raw['videos']:
        out['videos'].append(
            dict(id=video['id'], name=video['file_names'][0].split('/')[0],
                 width=video['width'], height=video['height']))
        anns = vid_to_anns[video['id']]
        track_to_instance = {}
        for frame_id, file_name in enumerate(video['file_names']):
            out['images'].append(
                dict(file_name=file_name, height=video['height'], width=video['width'],
                     id=img_id, frame_id=frame_id, video_id=video['id']))
            for ann in anns:
                bbox = ann['bboxes'][frame_id]
                if bbox is None:
                    continue
                if ann['id'] not in track_to_instance:
                    track_to_instance[ann['id']] = instance_id
                    instance_id += 1
                out['annotations'].append(
                    dict(id=ann_id, video_id=video['id'], image_id=img_id,
                         category_id=ann['category_id'],
                         instance_id=track_to_instance[ann['id']], bbox=bbox,
                         segmentation=to_compressed_rle(ann['segmentations'][frame_id],
                                                        video['height'], video['width']),
                         area=ann['areas'][frame_id], iscrowd=ann['iscrowd']))
                ann_id += 1
            img_id += 1
    return out


def split_cocovid(cocovid: Dict, heldout_ratio: float, seed: int = 0) -> Tuple[Dict, Dict]:
    """Split a CocoVID dict by video into ``(train_sub, heldout)``, keeping all ids.

    The held-out videos are ``round(heldout_ratio * num_videos)`` (at least one,
    at most all but one) drawn with ``numpy.random.default_rng(seed)``; both parts
    keep their ground truth and the original video/image/annotation/instance ids.

    Args:
        cocovid (dict): A converted train split.
        heldout_ratio (float): Fraction of videos to hold out, in (0, 1).
        seed (int): Seed of the draw. Defaults to 0.

    Returns:
        tuple[dict, dict]: ``(train_sub, heldout)``.
    """
    if not 0. < heldout_ratio < 1.:
        raise ValueError(f'split_cocovid: heldout_ratio must be in (0, 1), got {heldout_ratio}')
    video_ids = [v['id'] for v in cocovid['videos']]
    if len(video_ids) < 2:
        raise ValueError('split_cocovid: a held-out split needs at least 2 videos, got '
                         f'{len(video_ids)}')
    num_heldout = min(max(int(round(heldout_ratio * len(video_ids))), 1), len(video_ids) - 1)
    rng = np.random.default_rng(seed)
    heldout_ids = {video_ids[i] for i in rng.permutation(len(video_ids))[:num_heldout]}

    def subset(keep: Callable[[int], bool]) -> Dict:
        return dict(
            categories=copy.deepcopy(cocovid['categories']),
            videos=[v for v in cocovid['videos'] if keep(v['id'])],
            images=[im for im in cocovid['images'] if keep(im['video_id'])],
            annotations=[a for a in cocovid['annotations'] if keep(a['video_id'])])

    return (subset(lambda vid: vid not in heldout_ids), subset(lambda vid: vid in heldout_ids))


def class_report(cocovid: Dict, title: str = '') -> str:
    """Counts per split and per class; tolerant of empty classes and arbitrary ids."""
    objects, instances, videos = defaultdict(int), defaultdict(set), defaultdict(set)
    for ann in cocovid['annotations']:
        objects[ann['category_id']] += 1
        instances[ann['category_id']].add(ann['instance_id'])
        videos[ann['category_id']].add(ann['video_id'])
    num_inst = len({a['instance_id'] for a in cocovid['annotations']})
    lines = [
        f'----- {title} -----',
        f"{len(cocovid['videos'])} videos, {len(cocovid['images'])} images, "
        f"{len(cocovid['annotations'])} objects, {num_inst} instances",
    ]
    if cocovid['annotations']:
        width = max([len(str(c['name'])) for c in cocovid['categories']] + [5])
        for cat in cocovid['categories']:
            cid = cat['id']
            lines.append(f"  class {cid:>3} {str(cat['name']):<{width}} {objects[cid]:>7} objects "
                         f'{len(instances[cid]):>5} instances {len(videos[cid]):>5} videos')
    return '\n'.join(lines)


def _dump(obj: Dict, path: str) -> None:
    with open(path, 'w') as f:
        json.dump(obj, f)


def convert_youtubevis(root: str,
                       out_dir: Optional[str] = None,
                       version: str = '2021',
                       heldout_ratio: float = 0.,
                       seed: int = 0,
                       splits: Sequence[str] = YTVIS_SPLITS,
                       check_files: bool = True,
                       log: Optional[Callable[[str], None]] = print) -> Dict[str, str]:
    """Validate and convert a raw YouTube-VIS dataset to CocoVID json files.

    Args:
        root (str): Dataset root in the official layout (see module docstring).
        out_dir (str, optional): Where to write; defaults to ``<root>/annotations``.
        version (str): '2019' or '2021'. Defaults to '2021'.
        heldout_ratio (float): If > 0, also write a video-level split of train into
            ``youtube_vis_{version}_train_sub.json`` and
            ``youtube_vis_{version}_heldout.json`` (both with ground truth).
            Defaults to 0.
        seed (int): Seed of the held-out draw. Defaults to 0.
        splits (sequence of str): Splits to convert; ``train`` is required, the
            others are converted if their json exists. Defaults to all three.
        check_files (bool): Check that every frame file exists. Defaults to True.
        log (callable, optional): Called with report lines. Defaults to ``print``.

    Returns:
        dict[str, str]: Written files, keyed ``train``, ``valid``, ``test``,
        ``train_sub``, ``heldout``.

    Raises:
        ValueError: Bad arguments, missing train json, or a malformed input (see
            :func:`validate_raw_ytvis`).
    """
    if version not in YTVIS_VERSIONS:
        raise ValueError(f'convert_youtubevis: version must be one of {YTVIS_VERSIONS}, '
                         f'got {version!r}')
    if not 0. <= heldout_ratio < 1.:
        raise ValueError(f'convert_youtubevis: heldout_ratio must be in [0, 1), '
                         f'got {heldout_ratio}')
    unknown = [s for s in splits if s not in YTVIS_SPLITS]
    if unknown or 'train' not in splits:
        raise ValueError("convert_youtubevis: splits must include 'train' and be among "
                         f'{YTVIS_SPLITS}, got {list(splits)}')
    out_dir = out_dir or osp.join(root, 'annotations')
    log = log or (lambda msg: None)
    checker = FileChecker() if check_files else None
    written: Dict[str, str] = {}
    outputs: List[Tuple[str, Dict]] = []
    for split in splits:
        json_path, img_dir = raw_split_paths(root, version, split)
        if not osp.isfile(json_path):
            if split == 'train':
                raise ValueError(f'{json_path}: the train annotation file does not exist; '
                                 f'expected the YouTube-VIS {version} layout under {root}')
            log(f'{json_path} not found, skipping the {split} split')
            continue
        with open(json_path) as f:
            try:
                raw = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f'{json_path}: not valid json ({e})') from e
        has_ann = split == 'train'
        validate_raw_ytvis(raw, json_path, img_dir if check_files else None,
                           require_annotations=has_ann, file_checker=checker)
        cocovid = raw_to_cocovid(raw, with_annotations=has_ann)
        outputs.append((split, cocovid))
        if split == 'train' and heldout_ratio > 0:
            train_sub, heldout = split_cocovid(cocovid, heldout_ratio, seed)
            outputs += [('train_sub', train_sub), ('heldout', heldout)]

    os.makedirs(out_dir, exist_ok=True)
    for name, cocovid in outputs:
        path = osp.join(out_dir, f'youtube_vis_{version}_{name}.json')
        _dump(cocovid, path)
        written[name] = path
        log(class_report(cocovid, f'YouTube-VIS {version} {name} -> {path}'))
    return written
