"""YouTube-VIS dataset that validates its CocoVID json before training starts."""
import copy
import json
import logging
from typing import List, Optional

import mmengine.fileio as fileio
from mmdet.datasets import YouTubeVISDataset
from mmdet.datasets.api_wrappers import COCO
from mmengine.fileio.backends import LocalBackend
from mmengine.logging import print_log

from mmsparse.registry import DATASETS
from .ytvis_checks import FileChecker, validate_cocovid


@DATASETS.register_module()
class CheckedYouTubeVISDataset(YouTubeVISDataset):
    """mmdet's ``YouTubeVISDataset`` with up-front checks of the annotation file.

    mmdet indexes the CocoVID json directly, so a malformed file fails with a
    bare ``KeyError`` deep in data loading (or, for a missing frame, only when the
    pipeline reaches it mid-epoch), and some problems pass silently: a class name
    in ``metainfo`` that the json does not define is dropped, which shifts every
    later label; ``instance_id`` 0 is replaced. This dataset checks the json when
    it is loaded (construction, i.e. before training) with
    :func:`~mmsparse.datasets.ytvis_checks.validate_cocovid` and raises a
    ``ValueError`` naming the file, the video/image/annotation id and the key:

    * top-level ``videos``, ``images``, ``categories`` and, unless ``test_mode``,
      ``annotations``; the keys mmdet reads per video, image and annotation;
    * unique ids; frames of a video listed in order (``frame_id`` 0, 1, ...);
    * annotations pointing at existing images and defined categories,
      ``instance_id > 0``;
    * every class of ``metainfo['classes']`` defined in ``categories``;
    * every segmentation an RLE whose ``size`` is its image's height x width and
      whose ``counts`` decode to that many pixels, or a polygon list of at least
      3 points each (mmdet would fail mid-training with a bare ``cannot reshape
      array``, or silently ignore the instance);
    * every image file present under ``data_prefix['img_path']`` (``check_files``).

    Errors start with ``CheckedYouTubeVISDataset: <ann_file>: video ...``. A
    missing annotation file raises a one-line ``FileNotFoundError`` that names
    the file and ``docs/data_preparation.md``.

    Class subsets: ``metainfo=dict(classes=(...))`` replaces the 40 YouTube-VIS
    classes that ``dataset_version`` selects (only the name list is used, matched
    against the json's category *names*; the ids may be anything). Unlike mmdet,
    labels follow the order of ``metainfo['classes']`` even if the json lists the
    categories in another order (mmdet would pair label ``i`` with the ``i``-th
    matching category of the json, silently mislabelling). The category id of
    each label is also put into ``metainfo['cat_ids']``, from where
    :class:`~mmsparse.evaluation.YouTubeVISAPMetric` maps predicted labels back
    to the dataset's own ids in the results json / server zip. For training
    (not ``test_mode``), videos left without any frame by mmdet's filter (no
    instance of the chosen classes, with the default ``filter_empty_gt``) are
    dropped with a log line saying how many; mmdet keeps them as empty videos
    and frame sampling fails on them with a bare ``ValueError``. If no video is
    left, a ``ValueError`` names the classes.

    The json is parsed once: the COCO index is built from the validated dict.

    Args:
        dataset_version (str): '2019' or '2021': selects the default classes.
        check_files (bool): Check that every image file exists. Defaults to True.
        check_rle_counts (bool): Decode every compressed RLE's ``counts`` and
            compare its pixel count with its ``size`` (vectorised, a few seconds
            per 10M characters of RLE strings; sizes are always checked).
            Defaults to True.
        *args, **kwargs: Passed to :class:`mmdet.datasets.YouTubeVISDataset`
            (``ann_file``, ``data_root``, ``data_prefix``, ``metainfo``,
            ``test_mode``, ``pipeline``, ...).

    Example:
        >>> dataset = CheckedYouTubeVISDataset(
        ...     dataset_version='2021',
        ...     data_root='data/toy_ytvis21/',
        ...     ann_file='annotations/youtube_vis_2021_train_sub.json',
        ...     data_prefix=dict(img_path='train/JPEGImages'),
        ...     metainfo=dict(classes=('circle', 'square', 'triangle')))
    """

    def __init__(self,
                 dataset_version: str,
                 *args,
                 check_files: bool = True,
                 check_rle_counts: bool = True,
                 **kwargs) -> None:
        if dataset_version not in ('2019', '2021'):
            raise ValueError(f"{type(self).__name__}: dataset_version must be '2019' or "
                             f"'2021', got {dataset_version!r}")
        self.check_files = check_files
        self.check_rle_counts = check_rle_counts
        super().__init__(dataset_version, *args, **kwargs)

    def _file_checker(self, img_prefix: Optional[str]) -> Optional[FileChecker]:
        if not self.check_files or img_prefix is None:
            return None
        backend = fileio.get_file_backend(img_prefix)
        return FileChecker(None if isinstance(backend, LocalBackend) else fileio.exists)

    def load_data_list(self) -> List[dict]:
        """Validate the annotation file, then load it as mmdet does.

        Follows :meth:`mmdet.datasets.BaseVideoDataset.load_data_list` (mmdet
        3.3.0), except that the json is read once, checked, and that ``cat_ids``
        follow the order of ``metainfo['classes']``.

        Returns:
            list[dict]: One dict per video with its ``images`` (parsed frames).
        """
        if not fileio.exists(self.ann_file):
            raise FileNotFoundError(
                f'{type(self).__name__}: annotation file {self.ann_file} not found '
                f'(data_root={self.data_root!r}); docs/data_preparation.md explains how to '
                'download and convert YouTube-VIS or make the toy set')
        with fileio.get_local_path(self.ann_file) as local_path:
            with open(local_path) as f:
                try:
                    data = json.load(f)
                except json.JSONDecodeError as e:
                    raise ValueError(f'{type(self).__name__}: {self.ann_file}: not valid json '
                                     f'({e})') from e
        img_prefix = self.data_prefix.get('img_path', None)
        checker = self._file_checker(img_prefix)
        try:
            validate_cocovid(
                data,
                self.ann_file,
                img_prefix=img_prefix if checker is not None else None,
                require_annotations=not self.test_mode,
                classes=self.metainfo['classes'],
                file_checker=checker,
                decode_rle_counts=self.check_rle_counts)
        except ValueError as e:
            raise ValueError(f'{type(self).__name__}: {e}') from None
        data.setdefault('annotations', [])

        self.coco = COCO()
        self.coco.dataset = data
        self.coco.createIndex()
        # mmdet's wrapper aliases these in __init__, before the index existed.
        self.coco.img_ann_map = self.coco.imgToAnns
        self.coco.cat_img_map = self.coco.catToImgs

        name2id = {cat['name']: cat['id'] for cat in data['categories']}
        self.cat_ids = [name2id[name] for name in self.metainfo['classes']]
        self.cat2label = {cat_id: i for i, cat_id in enumerate(self.cat_ids)}
        # read by YouTubeVISAPMetric through the evaluator's dataset_meta
        self._metainfo['cat_ids'] = list(self.cat_ids)
        self.cat_img_map = copy.deepcopy(self.coco.cat_img_map)
        self.img_ids_with_ann = set()

        videos = {}
        for img_id in self.coco.get_img_ids():
            raw_img_info = self.coco.load_imgs([img_id])[0]
            raw_img_info['img_id'] = img_id
            video_id = raw_img_info['video_id']
            if video_id not in videos:
                videos[video_id] = dict(video_id=video_id, images=[], video_length=0)
            videos[video_id]['video_length'] += 1
            ann_ids = self.coco.get_ann_ids(img_ids=[img_id], cat_ids=self.cat_ids)
            raw_ann_info = self.coco.load_anns(ann_ids)
            parsed = self.parse_data_info(
                dict(raw_img_info=raw_img_info, raw_ann_info=raw_ann_info))
            if len(parsed['instances']) > 0:
                self.img_ids_with_ann.add(parsed['img_id'])
            videos[video_id]['images'].append(parsed)

        del self.coco
        return list(videos.values())

    def filter_data(self) -> List[dict]:
        """mmdet's frame filter, then drop the videos left without frames.

        Returns:
            list[dict]: The videos to train on (all videos in ``test_mode``).
        """
        data_list = super().filter_data()
        if self.test_mode:
            return data_list
        kept = [video for video in data_list if video['video_length'] > 0]
        dropped = len(data_list) - len(kept)
        classes = tuple(self.metainfo['classes'])
        if not kept:
            raise ValueError(
                f'{type(self).__name__}: {self.ann_file}: none of its {len(data_list)} videos '
                f"has a frame with an instance of metainfo['classes'] {classes}")
        if dropped:
            print_log(
                f'{type(self).__name__}: {dropped} of {len(data_list)} videos have no frame '
                f'with an instance of the classes {classes} and are left out of training '
                f'({len(kept)} videos kept)',
                logger='current',
                level=logging.INFO)
        return kept
