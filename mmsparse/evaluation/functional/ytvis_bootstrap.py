"""Paired bootstrap over videos for YouTube-VIS AP (numpy + pycocotools only).

Two models evaluated on the same held-out videos differ by a few AP points;
whether that is more than the luck of *which* videos were held out is what a
paired bootstrap answers: draw the videos with replacement, recompute both
models' AP on the same draw, and read the interval of the difference
(:func:`mmsparse.utils.stats.paired_bootstrap`).

AP is not a mean over videos, so every draw recomputes it from scratch. A
video drawn twice counts as two distinct videos (two ground-truth sets, two
prediction sets), exactly as if its copy had a new video id
(:func:`resample_ytvis` builds that renamed data set; it is the reference the
fast path is tested against). The fast path, :class:`YTVISVideoRecords`,
matches every (video, category) once, as :func:`accumulate_ytvis` does
(matching never looks across videos), stores the per-detection outcome
(true / false positive / ignored at each IoU threshold) and per-video
positives, and then recomputes precision for any multiset of videos by
concatenating the drawn videos' detections in draw order. Only the numbers of
area range "all" at 100 detections per video are kept: AP, AP50 and AP75.
"""
import copy
from typing import Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from .ytvis_ap import (IOU_THRS, MAX_DETS, _precision_recall, _prepare,
                       match_video, video_mask_iou)

BOOTSTRAP_METRICS = ('AP', 'AP50', 'AP75')
_T50 = int(np.flatnonzero(np.isclose(IOU_THRS, .5))[0])
_T75 = int(np.flatnonzero(np.isclose(IOU_THRS, .75))[0])


class YTVISVideoRecords:
    """Per-video matching results of one model on one set of videos.

    Build it with :meth:`from_predictions`; :meth:`stats` gives AP, AP50 and
    AP75 for all videos or for any multiset of video indices, and
    :meth:`to_dict` / :meth:`from_dict` store it as JSON (a few kB per 100
    videos), so intervals can be recomputed without the predictions.

    Args:
        video_ids (Sequence[int]): The V video ids, in the order of the
            indices that :meth:`stats` takes.
        cat_ids (Sequence[int]): The K category ids.
        num_pos (np.ndarray): (V, K) non-crowd ground-truth instances.
        det_video (np.ndarray): (N,) video index of each detection.
        det_cat (np.ndarray): (N,) category index of each detection.
        det_score (np.ndarray): (N,) detection scores.
        det_tp (np.ndarray): (T, N) bool, true positive at IoU threshold t.
        det_fp (np.ndarray): (T, N) bool, false positive at IoU threshold t
            (neither: matched to a crowd instance, ignored).
    """

    def __init__(self, video_ids: Sequence[int], cat_ids: Sequence[int],
                 num_pos: np.ndarray, det_video: np.ndarray,
                 det_cat: np.ndarray, det_score: np.ndarray,
                 det_tp: np.ndarray, det_fp: np.ndarray) -> None:
        self.video_ids = [int(v) for v in video_ids]
        self.cat_ids = [int(c) for c in cat_ids]
        self.num_pos = np.asarray(num_pos, dtype=np.int64).reshape(
            len(self.video_ids), len(self.cat_ids))
        self.det_video = np.asarray(det_video, dtype=np.int64)
        self.det_cat = np.asarray(det_cat, dtype=np.int64)
        self.det_score = np.asarray(det_score, dtype=np.float64)
        n = len(self.det_score)
        self.det_tp = np.asarray(det_tp, dtype=bool).reshape(len(IOU_THRS), n)
        self.det_fp = np.asarray(det_fp, dtype=bool).reshape(len(IOU_THRS), n)
        if not (len(self.det_video) == len(self.det_cat) == n):
            raise ValueError('YTVISVideoRecords: det_video, det_cat and '
                             'det_score must have one entry per detection, '
                             f'got {len(self.det_video)}, {len(self.det_cat)} '
                             f'and {n}')
        # Detections grouped by (category, video), in the order the
        # evaluation concatenates them: video by video, score-sorted inside.
        self._groups = []
        for k in range(len(self.cat_ids)):
            mine = np.flatnonzero(self.det_cat == k)
            mine = mine[np.argsort(self.det_video[mine], kind='mergesort')]
            counts = np.bincount(self.det_video[mine],
                                 minlength=len(self.video_ids))
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            self._groups.append((mine, starts, counts))

    @property
    def num_videos(self) -> int:
        return len(self.video_ids)

    @classmethod
    def from_predictions(
            cls, gt: Mapping,
            predictions: Sequence[Mapping]) -> 'YTVISVideoRecords':
        """Match predictions to ground truth video by video.

        Args:
            gt (dict): YouTube-VIS ground truth with ``videos`` (the videos to
                resample, each with ``id``, ``height``, ``width``),
                ``annotations`` and ``categories`` (see
                :func:`~mmsparse.evaluation.functional.accumulate_ytvis`).
            predictions (Sequence[dict]): Predicted video instances
                (``video_id``, ``category_id``, ``score``,
                ``segmentations``).

        Returns:
            YTVISVideoRecords: The records; :meth:`stats` on all videos equals
            :func:`~mmsparse.evaluation.functional.evaluate_ytvis`.
        """
        if not isinstance(gt, Mapping) or 'videos' not in gt:
            raise ValueError('YTVISVideoRecords: gt must be a YouTube-VIS '
                             'dict with "videos" (the items to resample)')
        vid_ids, cat_ids, gts, dts = _prepare(gt, predictions)
        index = {v: i for i, v in enumerate(vid_ids)}
        num_pos = np.zeros((len(vid_ids), len(cat_ids)), dtype=np.int64)
        video, cat, score, tps, fps = [], [], [], [], []
        max_det = MAX_DETS[-1]
        for vid in vid_ids:
            for k, cat_id in enumerate(cat_ids):
                c_gts = [g for g in gts.get(vid, []) if g['category_id'] == cat_id]
                c_dts = [d for d in dts.get(vid, []) if d['category_id'] == cat_id]
                gt_crowd = np.array([g['iscrowd'] for g in c_gts], dtype=bool)
                num_pos[index[vid], k] = int((~gt_crowd).sum())
                if not c_dts:
                    continue
                scores = np.array([d['score'] for d in c_dts])
                order = np.argsort(-scores, kind='mergesort')[:max_det]
                ious = video_mask_iou([c_dts[i]['rles'] for i in order],
                                      [g['rles'] for g in c_gts])
                # Area range "all": only crowd ground truth is ignored.
                matched, on_ignored = match_video(ious, gt_crowd, gt_crowd)
                tps.append(matched & ~on_ignored)
                fps.append(~matched)
                video += [index[vid]] * len(order)
                cat += [k] * len(order)
                score.append(scores[order])
        num_thr = len(IOU_THRS)
        cat_tp = np.concatenate(tps, 1) if tps else np.zeros((num_thr, 0), bool)
        cat_fp = np.concatenate(fps, 1) if fps else np.zeros((num_thr, 0), bool)
        score = np.concatenate(score) if score else np.zeros(0)
        return cls(vid_ids, cat_ids, num_pos, video, cat, score, cat_tp, cat_fp)

    def stats(self, indices: Optional[np.ndarray] = None) -> Dict[str, float]:
        """AP, AP50, AP75 (area all, 100 detections) of a multiset of videos.

        Args:
            indices (np.ndarray, optional): Video indices (into
                ``video_ids``); a repeated index counts as another video with
                the same ground truth and predictions. Defaults to None (every
                video once).

        Returns:
            dict[str, float]: ``AP``, ``AP50``, ``AP75``; -1 when no category
            has ground truth in the draw.
        """
        if indices is None:
            indices = np.arange(self.num_videos)
        indices = np.asarray(indices, dtype=np.int64).ravel()
        if indices.size and (indices.min() < 0 or indices.max() >= self.num_videos):
            raise IndexError('YTVISVideoRecords.stats: indices must be in '
                             f'[0, {self.num_videos}), got '
                             f'[{indices.min()}, {indices.max()}]')
        precisions = []
        for k, (mine, starts, counts) in enumerate(self._groups):
            num_pos = int(self.num_pos[indices, k].sum())
            if num_pos == 0:
                continue  # undefined category, as in summarize_ytvis
            lengths = counts[indices]
            total = int(lengths.sum())
            # Positions of the drawn videos' detections, in draw order.
            offsets = np.repeat(starts[indices] - np.cumsum(lengths) + lengths, lengths)
            sel = mine[offsets + np.arange(total)]
            precision, _ = _precision_recall(self.det_score[sel], self.det_tp[:, sel],
                                             self.det_fp[:, sel], num_pos)
            precisions.append(precision)
        if not precisions:
            return dict(AP=-1., AP50=-1., AP75=-1.)
        precision = np.stack(precisions)  # (K', T, R)
        return dict(AP=float(precision.mean()),
                    AP50=float(precision[:, _T50].mean()),
                    AP75=float(precision[:, _T75].mean()))

    def score_fn(self, metric: str = 'AP'):
        """``indices -> metric`` for :func:`mmsparse.utils.stats.paired_bootstrap`."""
        if metric not in BOOTSTRAP_METRICS:
            raise ValueError(f'YTVISVideoRecords: metric must be one of '
                             f'{BOOTSTRAP_METRICS}, got {metric!r}')
        return lambda indices: self.stats(indices)[metric]

    def to_dict(self) -> Dict:
        """JSON-ready dict; outcomes as one string per detection
        (``'t'`` true positive, ``'f'`` false positive, ``'i'`` ignored per
        IoU threshold)."""
        codes = np.where(self.det_tp, 't', np.where(self.det_fp, 'f', 'i'))
        return dict(
            video_ids=self.video_ids, cat_ids=self.cat_ids,
            num_pos=self.num_pos.tolist(), det_video=self.det_video.tolist(),
            det_cat=self.det_cat.tolist(), det_score=self.det_score.tolist(),
            det_outcome=[''.join(c) for c in codes.T])

    @classmethod
    def from_dict(cls, data: Mapping) -> 'YTVISVideoRecords':
        """Inverse of :meth:`to_dict`."""
        outcome = np.array([list(s) for s in data['det_outcome']],
                           dtype='<U1').reshape(-1, len(IOU_THRS)).T
        return cls(data['video_ids'], data['cat_ids'], data['num_pos'],
                   data['det_video'], data['det_cat'], data['det_score'],
                   outcome == 't', outcome == 'f')


def bootstrap_ap_difference(records_a: YTVISVideoRecords,
                            records_b: YTVISVideoRecords,
                            metric: str = 'AP',
                            n_boot: int = 1000,
                            seed: int = 0,
                            confidence: float = 0.95) -> Dict:
    """Paired bootstrap over videos of ``metric(a) - metric(b)``.

    Args:
        records_a (YTVISVideoRecords): The row's records.
        records_b (YTVISVideoRecords): The reference row's records, on the
            same videos (same ``video_ids``, same order).
        metric (str): ``'AP'``, ``'AP50'`` or ``'AP75'``. Defaults to 'AP'.
        n_boot (int): Bootstrap rounds. Defaults to 1000.
        seed (int): Seed of the draws; the same seed gives the same draws
            for every pair of rows. Defaults to 0.
        confidence (float): Coverage of the percentile interval.
            Defaults to 0.95.

    Returns:
        dict: :func:`mmsparse.utils.stats.paired_bootstrap`'s result
        (``a``, ``b``, ``diff``, ``low``, ``high``, ...) plus ``metric``.
    """
    from mmsparse.utils.stats import paired_bootstrap
    if records_a.video_ids != records_b.video_ids:
        raise ValueError('bootstrap_ap_difference: both rows must be '
                         'evaluated on the same videos in the same order, got '
                         f'{len(records_a.video_ids)} and '
                         f'{len(records_b.video_ids)} videos that differ')
    result = paired_bootstrap(records_a.score_fn(metric), records_b.score_fn(metric),
                              records_a.num_videos, n_boot=n_boot, seed=seed,
                              confidence=confidence)
    result['metric'] = metric
    return result


def resample_ytvis(gt: Mapping, predictions: Sequence[Mapping],
                   indices: Union[Sequence[int], np.ndarray]) -> tuple:
    """The data set of a bootstrap draw, with every drawn copy a new video.

    The ``i``-th drawn video gets the id ``i + 1``; its annotations and
    predictions follow it (annotation ids renumbered). This is the slow,
    obvious reference for :meth:`YTVISVideoRecords.stats`.

    Args:
        gt (dict): YouTube-VIS ground truth with ``videos``, ``annotations``
            and ``categories``.
        predictions (Sequence[dict]): Predicted video instances.
        indices (Sequence[int]): Indices into ``gt['videos']``.

    Returns:
        tuple[dict, list]: The resampled ground truth and predictions.
    """
    videos = gt['videos']
    anns_of: Dict[int, List[Mapping]] = {v['id']: [] for v in videos}
    for ann in gt.get('annotations', []):
        anns_of.setdefault(ann['video_id'], []).append(ann)
    preds_of: Dict[int, List[Mapping]] = {v['id']: [] for v in videos}
    for pred in predictions:
        preds_of.setdefault(pred['video_id'], []).append(pred)
    new_gt = {k: v for k, v in gt.items() if k not in ('videos', 'annotations')}
    new_gt['videos'], new_gt['annotations'] = [], []
    new_preds = []
    for i, idx in enumerate(indices):
        src = videos[int(idx)]
        video = dict(copy.deepcopy(src), id=i + 1)
        new_gt['videos'].append(video)
        for ann in anns_of[src['id']]:
            new_gt['annotations'].append(
                dict(copy.deepcopy(ann), video_id=i + 1,
                     id=len(new_gt['annotations']) + 1))
        for pred in preds_of[src['id']]:
            new_preds.append(dict(copy.deepcopy(pred), video_id=i + 1))
    return new_gt, new_preds
