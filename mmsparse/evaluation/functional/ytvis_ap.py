"""Video-level COCO-style AP for YouTube-VIS (numpy + pycocotools only).

A re-implementation of the official YouTube-VIS evaluation
(`youtubevos/cocoapi <https://github.com/youtubevos/cocoapi>`_, vendored by
mmdet as ``mmdet/evaluation/functional/ytviseval.py``), which is a port of
pycocotools' ``COCOeval`` from images to videos. The vendored copy uses
``np.float`` and fails on numpy >= 1.24; this module computes the same
numbers with vectorised numpy code and no deprecated aliases.

Semantics (identical to the YouTube-VIS API):

* Spatio-temporal mask IoU between a predicted and a ground-truth video
  instance, with per-frame masks :math:`d_f, g_f` (``None`` = absent)::

      IoU(d, g) = sum_f |d_f & g_f| / sum_f |d_f | g_f|

  A frame where only one of them is present adds that mask's area to the
  union; a frame where both are absent adds nothing. An empty union gives 0.
* Matching per (video, category): detections in descending score order
  (stable), at most ``maxDets[-1]`` of them, are greedily matched to the
  best still-free ground truth with IoU >= threshold, non-ignored ground
  truth first. Crowd ground truth (``iscrowd``) is ignored and may absorb
  several detections. Ground truth whose *mean* area (over frames with a
  non-empty area) lies outside the area range is ignored, as are unmatched
  detections whose mean mask area lies outside it.
* Precision is 101-point interpolated over recall 0:0.01:1 for IoU
  thresholds 0.50:0.05:0.95, max detections 1/10/100 per video and category,
  area ranges all / small (< 128^2) / medium (128^2 - 256^2) /
  large (> 256^2). Categories without (non-ignored) ground truth are
  undefined (-1) and left out of the means.
"""
from collections import OrderedDict, defaultdict
from typing import (Any, Dict, Hashable, List, Mapping, Optional, Sequence,
                    Tuple, Union)

import numpy as np
import pycocotools.mask as mask_util

# np.linspace as in the reference: np.arange drifts slightly above 0.95.
IOU_THRS = np.linspace(.5, .95, int(np.round((.95 - .5) / .05)) + 1)
REC_THRS = np.linspace(.0, 1., int(np.round((1. - .0) / .01)) + 1)
MAX_DETS = (1, 10, 100)
AREA_RANGES = OrderedDict(
    all=(0., 1e5**2),
    small=(0., 128.**2),
    medium=(128.**2, 256.**2),
    large=(256.**2, 1e5**2))
STAT_NAMES = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10',
              'AR100', 'ARs', 'ARm', 'ARl')

RLE = Dict[str, Any]
Segmentation = Union[None, RLE, List[List[float]]]


def to_rle(segm: Segmentation,
           height: Optional[int] = None,
           width: Optional[int] = None) -> Optional[RLE]:
    """Convert one frame's segmentation to a compressed RLE.

    Args:
        segm (dict | list | None): Compressed RLE (``counts`` str/bytes),
            uncompressed RLE (``counts`` list of ints), polygon list, or a
            falsy value (``None``, ``[]``) for "absent in this frame".
        height (int, optional): Frame height, needed for polygons.
        width (int, optional): Frame width, needed for polygons.

    Returns:
        dict | None: A compressed RLE, or ``None`` when absent.
    """
    if not segm:
        return None
    if isinstance(segm, list):
        if height is None or width is None:
            raise ValueError('to_rle: a polygon segmentation needs the video height '
                             'and width (`videos` entries).')
        return mask_util.merge(mask_util.frPyObjects(segm, height, width))
    if isinstance(segm, dict) and 'counts' in segm and 'size' in segm:
        if isinstance(segm['counts'], list):
            h, w = segm['size']
            return mask_util.frPyObjects(segm, h, w)
        return segm
    raise TypeError('to_rle: a segmentation must be an RLE dict with "counts" and '
                    f'"size", a polygon list or None, got {type(segm)}.')


def _mean_area(areas: Sequence[Optional[float]]) -> float:
    """Mean over frames with a truthy (present, non-zero) area, else 0."""
    present = [a for a in areas if a]
    return float(np.mean(present)) if present else 0.


def _rle_areas(rles: Sequence[Optional[RLE]]) -> np.ndarray:
    """Per-frame mask areas, 0 where a frame is absent."""
    areas = np.zeros(len(rles))
    idx = [f for f, r in enumerate(rles) if r]
    if idx:
        areas[idx] = mask_util.area([rles[f] for f in idx])
    return areas


def video_mask_iou(dt_rles: Sequence[Sequence[Optional[RLE]]],
                   gt_rles: Sequence[Sequence[Optional[RLE]]]) -> np.ndarray:
    """Spatio-temporal mask IoU between predicted and ground-truth instances.

    .. math::
        IoU(d, g) = \\frac{\\sum_f |d_f \\cap g_f|}{\\sum_f |d_f \\cup g_f|}

    Args:
        dt_rles (Sequence[Sequence[dict | None]]): D predicted instances,
            each a per-frame list of compressed RLEs (``None`` = absent).
        gt_rles (Sequence[Sequence[dict | None]]): G ground-truth instances,
            same frame count.

    Returns:
        np.ndarray: IoU matrix of shape (D, G), 0 where the union is empty.
    """
    num_dt, num_gt = len(dt_rles), len(gt_rles)
    if num_dt == 0 or num_gt == 0:
        return np.zeros((num_dt, num_gt))
    lengths = {len(s) for s in dt_rles} | {len(s) for s in gt_rles}
    if len(lengths) != 1:
        raise ValueError('video_mask_iou: all instances of a video need one entry per frame, '
                         f'got sequence lengths {sorted(lengths)}.')
    inter = np.zeros((num_dt, num_gt))
    for f in range(lengths.pop()):
        d_idx = [i for i, s in enumerate(dt_rles) if s[f]]
        g_idx = [j for j, s in enumerate(gt_rles) if s[f]]
        if not d_idx or not g_idx:
            continue
        d_f = [dt_rles[i][f] for i in d_idx]
        g_f = [gt_rles[j][f] for j in g_idx]
        sizes = {tuple(r['size']) for r in d_f + g_f}
        if len(sizes) != 1:
            raise ValueError(f'video_mask_iou: mask sizes differ in frame {f}: {sorted(sizes)}.')
        # Crowd mode of pycocotools' iou gives |d & g| / |d| exactly as a
        # ratio of integers; multiplying back recovers the integer count.
        ratio = np.asarray(mask_util.iou(d_f, g_f, [1] * len(g_f)))
        d_area = mask_util.area(d_f).astype(np.float64)
        inter[np.ix_(d_idx, g_idx)] += np.rint(ratio * d_area[:, None])
    dt_area = np.array([_rle_areas(s).sum() for s in dt_rles])
    gt_area = np.array([_rle_areas(s).sum() for s in gt_rles])
    union = dt_area[:, None] + gt_area[None, :] - inter
    return np.divide(
        inter, union, out=np.zeros_like(inter), where=union > 0)


def match_video(ious: np.ndarray,
                gt_ignore: np.ndarray,
                gt_crowd: np.ndarray,
                iou_thrs: np.ndarray = IOU_THRS) -> Tuple[np.ndarray, np.ndarray]:
    """Greedy COCO matching of one (video, category) at all IoU thresholds.

    Args:
        ious (np.ndarray): (D, G) IoUs, detections sorted by descending score.
        gt_ignore (np.ndarray): (G,) bool, ground truth that is ignored
            (crowd or outside the area range).
        gt_crowd (np.ndarray): (G,) bool, crowd ground truth (may be matched
            by several detections).
        iou_thrs (np.ndarray): (T,) IoU thresholds.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``dt_matched`` and ``dt_on_ignored``,
        both (T, D) bool: whether a detection is matched, and whether its
        match is an ignored ground truth.
    """
    num_dt, num_gt = ious.shape
    num_thr = len(iou_thrs)
    dt_matched = np.zeros((num_thr, num_dt), dtype=bool)
    dt_on_ignored = np.zeros((num_thr, num_dt), dtype=bool)
    if num_dt == 0 or num_gt == 0:
        return dt_matched, dt_on_ignored
    thr = np.minimum(iou_thrs, 1 - 1e-10)[:, None]
    gt_taken = np.zeros((num_thr, num_gt), dtype=bool)
    rows = np.arange(num_thr)
    for d in range(num_dt):
        ok = (~gt_taken | gt_crowd) & (ious[d] >= thr)
        best = np.full(num_thr, -1)
        # Regular ground truth first; ignored only when no regular matches.
        # Among candidates the highest IoU wins, the last one on ties.
        for group in (~gt_ignore, gt_ignore):
            cand = ok & group
            vals = np.where(cand, ious[d], -1.)
            last_max = num_gt - 1 - vals[:, ::-1].argmax(axis=1)
            take = cand.any(axis=1) & (best < 0)
            best[take] = last_max[take]
        hit = best >= 0
        gt_taken[rows[hit], best[hit]] = True
        dt_matched[hit, d] = True
        dt_on_ignored[hit, d] = gt_ignore[best[hit]]
    return dt_matched, dt_on_ignored


def _precision_recall(scores: np.ndarray, tps: np.ndarray, fps: np.ndarray,
                      num_pos: int) -> Tuple[np.ndarray, np.ndarray]:
    """Interpolated precision (T, R) and final recall (T,) of one setting.

    ``scores`` (N,), ``tps``/``fps`` (T, N) bool, concatenated over videos.
    """
    order = np.argsort(-scores, kind='mergesort')
    tp_sum = np.cumsum(tps[:, order], axis=1, dtype=np.float64)
    fp_sum = np.cumsum(fps[:, order], axis=1, dtype=np.float64)
    num_thr, num_det = tp_sum.shape
    precision = np.zeros((num_thr, len(REC_THRS)))
    if num_det == 0:
        return precision, np.zeros(num_thr)
    rc = tp_sum / num_pos
    pr = tp_sum / (fp_sum + tp_sum + np.spacing(1))
    # precision envelope: max precision at any recall >= this one
    pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
    for t in range(num_thr):
        inds = np.searchsorted(rc[t], REC_THRS, side='left')
        valid = inds < num_det
        precision[t, valid] = pr[t, inds[valid]]
    return precision, rc[:, -1]


def _prepare(
    gt: Union[Mapping, Sequence[Mapping]], predictions: Sequence[Mapping]
) -> Tuple[List, List, Dict, Dict]:
    """Normalise inputs into per-video lists of gt / prediction records."""
    if isinstance(gt, Mapping):
        gt_anns = list(gt.get('annotations', []))
        videos = {v['id']: v for v in gt.get('videos', [])}
        if 'categories' in gt:
            cat_ids = sorted({c['id'] for c in gt['categories']})
        else:
            cat_ids = sorted({a['category_id'] for a in gt_anns})
        unknown = {p['video_id'] for p in predictions} - set(videos)
        if 'videos' in gt and unknown:
            raise ValueError('accumulate_ytvis: predictions refer to videos missing from the '
                             f'ground truth "videos": {sorted(unknown)[:10]}.')
    elif isinstance(gt, Sequence):
        gt_anns = list(gt)
        videos = {}
        cat_ids = sorted({a['category_id'] for a in gt_anns})
    else:
        raise TypeError('accumulate_ytvis: gt must be a YouTube-VIS dict or a list of ground-'
                        f'truth instances, got {type(gt)}.')
    vid_ids = sorted(set(videos) | {a['video_id'] for a in gt_anns}
                     | {p['video_id'] for p in predictions})

    def rles_of(ann: Mapping) -> List[Optional[RLE]]:
        info = videos.get(ann['video_id'], {})
        return [
            to_rle(s, info.get('height'), info.get('width'))
            for s in ann['segmentations']
        ]

    cat_set = set(cat_ids)
    gts = defaultdict(list)
    for ann in gt_anns:
        if ann['category_id'] not in cat_set:
            continue
        rles = rles_of(ann)
        areas = ann['areas'] if 'areas' in ann else _rle_areas(rles)
        gts[ann['video_id']].append(
            dict(
                category_id=ann['category_id'],
                rles=rles,
                iscrowd=bool(ann.get('iscrowd', 0)),
                area=_mean_area(areas)))
    dts = defaultdict(list)
    for pred in predictions:
        if pred['category_id'] not in cat_set:
            continue
        rles = rles_of(pred)
        dts[pred['video_id']].append(
            dict(
                category_id=pred['category_id'],
                rles=rles,
                score=float(pred['score']),
                area=_mean_area(_rle_areas(rles))))
    return vid_ids, cat_ids, gts, dts


def accumulate_ytvis(gt: Union[Mapping, Sequence[Mapping]],
                     predictions: Sequence[Mapping]) -> Dict[str, Any]:
    """Match predictions to ground truth and accumulate precision / recall.

    Args:
        gt (dict | Sequence[dict]): YouTube-VIS ground truth: a dict with
            ``videos`` (``id``, ``height``, ``width``), ``annotations`` and
            ``categories``, or just the list of annotations. An annotation has
            ``video_id``, ``category_id``, ``segmentations`` (one RLE /
            polygon / None per frame), optional ``areas`` (one per frame,
            None when absent; computed from the masks if missing) and
            optional ``iscrowd``.
        predictions (Sequence[dict]): Predicted video instances with
            ``video_id``, ``category_id``, ``score`` and ``segmentations``.

    Returns:
        dict: ``precision`` (T, R, K, A, M) and ``recall`` (T, K, A, M), -1
        where a category has no non-ignored ground truth, and ``cat_ids``
        (the K category ids, sorted).
    """
    vid_ids, cat_ids, gts, dts = _prepare(gt, predictions)
    num_thr, num_rec, num_area = len(IOU_THRS), len(REC_THRS), len(AREA_RANGES)
    precision = -np.ones((num_thr, num_rec, len(cat_ids), num_area,
                          len(MAX_DETS)))
    recall = -np.ones((num_thr, len(cat_ids), num_area, len(MAX_DETS)))
    max_det = MAX_DETS[-1]
    # per (category, area range): per-video (scores, tps, fps) and #positives
    per_setting = defaultdict(list)
    num_pos = defaultdict(int)
    for vid in vid_ids:
        v_gts, v_dts = gts.get(vid, []), dts.get(vid, [])
        if not v_gts and not v_dts:
            continue
        for k, cat in enumerate(cat_ids):
            c_gts = [g for g in v_gts if g['category_id'] == cat]
            c_dts = [d for d in v_dts if d['category_id'] == cat]
            if not c_gts and not c_dts:
                continue
            scores = np.array([d['score'] for d in c_dts])
            order = np.argsort(-scores, kind='mergesort')[:max_det]
            c_dts = [c_dts[i] for i in order]
            scores = scores[order]
            ious = video_mask_iou([d['rles'] for d in c_dts],
                                  [g['rles'] for g in c_gts])
            gt_crowd = np.array([g['iscrowd'] for g in c_gts], dtype=bool)
            gt_area = np.array([g['area'] for g in c_gts])
            dt_area = np.array([d['area'] for d in c_dts])
            for a, (lo, hi) in enumerate(AREA_RANGES.values()):
                gt_ignore = gt_crowd | (gt_area < lo) | (gt_area > hi)
                matched, on_ignored = match_video(ious, gt_ignore, gt_crowd)
                dt_out = (dt_area < lo) | (dt_area > hi)
                ignored = on_ignored | (~matched & dt_out[None, :])
                per_setting[k, a].append(
                    (scores, matched & ~ignored, ~matched & ~ignored))
                num_pos[k, a] += int((~gt_ignore).sum())
    for (k, a), entries in per_setting.items():
        if num_pos[k, a] == 0:
            continue
        for m, max_det in enumerate(MAX_DETS):
            scores = np.concatenate([e[0][:max_det] for e in entries])
            tps = np.concatenate([e[1][:, :max_det] for e in entries], axis=1)
            fps = np.concatenate([e[2][:, :max_det] for e in entries], axis=1)
            precision[:, :, k, a, m], recall[:, k, a, m] = _precision_recall(
                scores, tps, fps, num_pos[k, a])
    return dict(precision=precision, recall=recall, cat_ids=cat_ids)


def _mean_defined(values: np.ndarray) -> float:
    defined = values[values > -1]
    return float(np.mean(defined)) if defined.size else -1.


def summarize_ytvis(precision: np.ndarray,
                    recall: np.ndarray) -> Dict[str, float]:
    """The 12 COCO summary numbers (``COCOeval.stats`` order).

    Args:
        precision (np.ndarray): (T, R, K, A, M) from :func:`accumulate_ytvis`.
        recall (np.ndarray): (T, K, A, M) from :func:`accumulate_ytvis`.

    Returns:
        dict[str, float]: :data:`STAT_NAMES` -> value, -1 where undefined.
    """
    t50 = int(np.flatnonzero(np.isclose(IOU_THRS, .5))[0])
    t75 = int(np.flatnonzero(np.isclose(IOU_THRS, .75))[0])
    m100 = len(MAX_DETS) - 1
    values = [
        _mean_defined(precision[:, :, :, 0, m100]),
        _mean_defined(precision[t50, :, :, 0, m100]),
        _mean_defined(precision[t75, :, :, 0, m100]),
        *(_mean_defined(precision[:, :, :, a, m100]) for a in (1, 2, 3)),
        *(_mean_defined(recall[:, :, 0, m]) for m in range(len(MAX_DETS))),
        *(_mean_defined(recall[:, :, a, m100]) for a in (1, 2, 3)),
    ]
    return OrderedDict(zip(STAT_NAMES, values))


def evaluate_ytvis(gt: Union[Mapping, Sequence[Mapping]],
                   predictions: Sequence[Mapping]) -> Dict[str, float]:
    """Evaluate video instance segmentation the YouTube-VIS way.

    Args:
        gt (dict | Sequence[dict]): Ground truth, see
            :func:`accumulate_ytvis`.
        predictions (Sequence[dict]): Predicted video instances, see
            :func:`accumulate_ytvis`. May be empty.

    Returns:
        dict[str, float]: AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100,
        ARs, ARm, ARl (as ``COCOeval.stats``), -1 where undefined.
    """
    acc = accumulate_ytvis(gt, predictions)
    return summarize_ytvis(acc['precision'], acc['recall'])


def per_category_ap(precision: np.ndarray) -> np.ndarray:
    """AP@[.5:.95] per category (area all, 100 dets), -1 without gt.

    Args:
        precision (np.ndarray): (T, R, K, A, M) from :func:`accumulate_ytvis`.

    Returns:
        np.ndarray: (K,) AP per category.
    """
    return np.array([
        _mean_defined(precision[:, :, k, 0, -1])
        for k in range(precision.shape[2])
    ])


def format_ytvis_summary(stats: Mapping[Hashable, float]) -> str:
    """The 12 summary lines in the familiar ``COCOeval.summarize`` layout."""
    rows = [('AP', '0.50:0.95', 'all', 100), ('AP', '0.50', 'all', 100),
            ('AP', '0.75', 'all', 100), ('AP', '0.50:0.95', 'small', 100),
            ('AP', '0.50:0.95', 'medium', 100),
            ('AP', '0.50:0.95', 'large', 100),
            ('AR', '0.50:0.95', 'all', 1), ('AR', '0.50:0.95', 'all', 10),
            ('AR', '0.50:0.95', 'all', 100),
            ('AR', '0.50:0.95', 'small', 100),
            ('AR', '0.50:0.95', 'medium', 100),
            ('AR', '0.50:0.95', 'large', 100)]
    lines = []
    for name, (kind, iou, area, dets) in zip(STAT_NAMES, rows):
        title = 'Average Precision' if kind == 'AP' else 'Average Recall'
        lines.append(f' {title:<18} ({kind}) @[ IoU={iou:<9} | '
                     f'area={area:>6s} | maxDets={dets:>3d} ] = '
                     f'{stats[name]:0.3f}')
    return '\n'.join(lines)
