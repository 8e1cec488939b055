"""Tests of the YouTube-VIS evaluator and the registered metric.

The reference for the cross-checks is mmdet's vendored youtube-vis API
(``mmdet/evaluation/functional/ytvis.py``, ``ytviseval.py``), made to run on
current numpy by a test-local ``np.float`` shim (``monkeypatch``).
"""
import contextlib
import copy
import datetime
import io
import json
import os
import os.path as osp
import socket
import time
import zipfile

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
import torch.multiprocessing as mp

from mmsparse.evaluation.functional import (STAT_NAMES, evaluate_ytvis, to_rle,
                                            video_mask_iou)

H, W = 300, 400  # frame size, large enough for all three area ranges


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _rle(mask):
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle['counts'] = rle['counts'].decode()
    return rle


def _uncompressed_rle(mask):
    """Uncompressed RLE (``counts`` list) as in raw YouTube-VIS json."""
    flat = mask.flatten(order='F').astype(np.uint8)
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1,
                             [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0]:
        counts = [0] + counts
    return dict(counts=counts, size=list(mask.shape))


def _box(y0, x0, h, w, height=H, width=W):
    mask = np.zeros((height, width), np.uint8)
    mask[max(y0, 0):y0 + h, max(x0, 0):x0 + w] = 1
    return mask


def _stats(gt, preds):
    return np.array(list(evaluate_ytvis(gt, preds).values()))


def _vendored_stats(gt, preds, monkeypatch):
    """12 stats from mmdet's vendored YTVIS API (np.float shim, test-local)."""
    from mmdet.evaluation.functional import YTVIS, YTVISeval
    monkeypatch.setattr(np, 'float', float, raising=False)
    with contextlib.redirect_stdout(io.StringIO()):
        ytvis = YTVIS(copy.deepcopy(gt))
        dets = ytvis.loadRes(copy.deepcopy(preds))
        ev = YTVISeval(ytvis, dets, 'segm')
        ev.params.vidIds = ytvis.getVidIds()
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats)


def _rand_box(rng):
    side = rng.choice([40, 160, 330])  # small / medium / large
    h = int(np.clip(side * rng.uniform(.5, 1.2), 2, H))
    w = int(np.clip(side * rng.uniform(.5, 1.5), 2, W))
    return int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1)), h, w


def _random_dataset(seed, num_videos=6, num_cats=3):
    """Videos with several categories, crowd gt, None frames, empty masks,
    noisy / duplicate / wrong-class predictions, tied scores, false
    positives on videos without gt and in a category outside the gt."""
    rng = np.random.default_rng(seed)
    videos, anns, preds = [], [], []
    for vid in range(1, num_videos + 1):
        length = int(rng.integers(1, 5))
        videos.append(dict(id=vid, height=H, width=W, length=length))
        for _ in range(int(rng.integers(0, 5))):
            cat = int(rng.integers(1, num_cats + 1))
            box = _rand_box(rng)
            frames = [None if rng.random() < .25 else _box(*box)
                      for _ in range(length)]
            if rng.random() < .1:
                frames[0] = np.zeros((H, W), np.uint8)  # present, area 0
            anns.append(
                dict(
                    id=len(anns) + 1,
                    video_id=vid,
                    category_id=cat,
                    iscrowd=int(rng.random() < .15),
                    segmentations=[None if m is None else _rle(m)
                                   for m in frames],
                    areas=[None if m is None else float(m.sum())
                           for m in frames]))
            for _ in range(int(rng.integers(0, 3))):
                jit = rng.integers(-15, 16, 4)
                pbox = (box[0] + jit[0], box[1] + jit[1],
                        max(box[2] + jit[2], 1), max(box[3] + jit[3], 1))
                pframes = [
                    None if (m is None and rng.random() < .7)
                    or rng.random() < .1 else _box(*pbox) for m in frames
                ]
                pcat = cat if rng.random() < .8 else int(
                    rng.integers(1, num_cats + 2))
                preds.append(
                    dict(
                        video_id=vid,
                        category_id=pcat,
                        score=float(np.round(rng.random(), 1)),  # ties
                        segmentations=[None if m is None else _rle(m)
                                       for m in pframes]))
        for _ in range(int(rng.integers(0, 3))):
            box = _rand_box(rng)
            preds.append(
                dict(
                    video_id=vid,
                    category_id=int(rng.integers(1, num_cats + 2)),
                    score=float(rng.random()),
                    segmentations=[
                        None if rng.random() < .2 else _rle(_box(*box))
                        for _ in range(length)
                    ]))
    gt = dict(
        videos=videos,
        annotations=anns,
        categories=[dict(id=i, name=f'c{i}') for i in range(1, num_cats + 1)])
    return gt, preds


def _one_video_gt(anns, length=2, height=H, width=W):
    return dict(
        videos=[dict(id=1, height=height, width=width, length=length)],
        annotations=anns,
        categories=[dict(id=1, name='a'), dict(id=2, name='b')])


# --------------------------------------------------------------------------
# functional evaluator
# --------------------------------------------------------------------------
def test_video_mask_iou_by_hand():
    # frame 0: dt row 0 (4 px), gt rows 0-2 x cols 0-1 (6 px); overlap 2 px
    #          -> I0 = 2, U0 = 4 + 6 - 2 = 8
    # frame 1: dt absent (None), gt 3 px -> I1 = 0, U1 = 3
    # frame 2: both absent -> ignored
    # IoU = (2 + 0) / (8 + 3) = 2 / 11
    dt0, gt0, gt1 = np.zeros((4, 4)), np.zeros((4, 4)), np.zeros((4, 4))
    dt0[0, :] = 1
    gt0[0:3, 0:2] = 1
    gt1[3, 0:3] = 1
    dt = [_rle(dt0), None, None]
    gt = [_rle(gt0), _rle(gt1), None]
    empty = [None, None, None]
    ious = video_mask_iou([dt, empty], [gt, empty])
    np.testing.assert_allclose(ious, [[2 / 11, 0.], [0., 0.]], rtol=0, atol=0)
    # frame 1 with a dt-only mask of 4 px instead: U = 8 + 3 + 4 -> 2 / 15
    dt_f1 = _rle(dt0)
    assert video_mask_iou([[dt[0], dt_f1, None]], [gt])[0, 0] == 2 / 15
    # uncompressed RLE converts to the same mask
    assert video_mask_iou([[to_rle(_uncompressed_rle(dt0)), None, None]],
                          [gt])[0, 0] == 2 / 11
    assert video_mask_iou([], [gt]).shape == (0, 1)
    with pytest.raises(ValueError,
                       match='^video_mask_iou: all instances of a video need one '
                       'entry per frame'):
        video_mask_iou([dt[:2]], [gt])
    with pytest.raises(ValueError, match='^video_mask_iou: mask sizes differ'):
        video_mask_iou([[_rle(np.ones((4, 5))), None, None]], [gt])


def _perfect_setup(rng):
    anns, preds = [], []
    sizes = [(40, 50), (150, 150), (290, 390)]  # small, medium, large
    for vid in (1, 2):
        for i, (h, w) in enumerate(sizes):
            frames = [_box(5 + i, 5, h, w), None, _box(2, 3 + i, h, w)]
            segs = [None if m is None else _rle(m) for m in frames]
            anns.append(
                dict(
                    id=len(anns) + 1,
                    video_id=vid,
                    category_id=1 + i,
                    segmentations=segs,
                    areas=[None if m is None else float(m.sum())
                           for m in frames],
                    iscrowd=0))
            preds.append(
                dict(
                    video_id=vid,
                    category_id=1 + i,
                    score=float(rng.random()),
                    segmentations=copy.deepcopy(segs)))
    gt = dict(
        videos=[dict(id=v, height=H, width=W) for v in (1, 2)],
        annotations=anns,
        categories=[dict(id=i, name=f'c{i}') for i in (1, 2, 3)])
    return gt, preds


def test_perfect_and_no_predictions():
    gt, preds = _perfect_setup(np.random.default_rng(0))
    stats = evaluate_ytvis(gt, preds)
    assert list(stats) == list(STAT_NAMES)
    # precision is tp / (tp + fp + eps), so "1" is 1 - 2e-16
    np.testing.assert_allclose(list(stats.values()), 1., atol=1e-12)
    # the gt list alone (no videos / categories) gives the same
    np.testing.assert_allclose(
        list(evaluate_ytvis(gt['annotations'], preds).values()), 1., atol=1e-12)
    # no predictions at all: 0 everywhere (every area range has gt)
    assert all(v == 0. for v in evaluate_ytvis(gt, []).values())


def test_partial_by_hand():
    # One video, two frames, category 1 has two gt instances, 100 px each
    # frame (mean area 100 -> "small"):
    #   gt A: rows 0-9, cols 0-9 in both frames
    #   gt B: rows 20-29, cols 20-29 in frame 0, absent in frame 1
    # Predictions of category 1:
    #   p1 score 0.9: A's mask in frame 0 (I=100), 24 px inside A in frame 1
    #      -> IoU(p1, A) = (100 + 24) / (100 + 100) = 0.62, IoU(p1, B) = 0
    #   p2 score 0.95: a far-away 5x5 square in both frames -> IoU 0 with all
    # Category 2: a prediction but no gt -> undefined, left out of the means.
    # At thresholds .50, .55, .60 (3 of 10): ranking p2 (FP), p1 (TP):
    #   recall [0, .5], precision [0, .5], envelope [.5, .5]
    #   -> precision .5 at the 51 recall points 0..0.50, 0 beyond:
    #   AP_t = .5 * 51 / 101; recall_t = .5
    # At thresholds .65 .. .95: no TP -> AP_t = 0, recall_t = 0.
    # AP = 3/10 * 51/202, AP50 = 51/202, AP75 = 0, AR@1 (only p2 kept) = 0,
    # AR@10 = AR@100 = 3/10 * .5; APs = AP, ARs = AR@100; m/l undefined.
    box_a = _box(0, 0, 10, 10)
    box_b = _box(20, 20, 10, 10)
    inside = np.zeros((H, W), np.uint8)
    inside[0:2, 0:10] = 1
    inside[2, 0:4] = 1
    assert inside.sum() == 24
    far = _box(200, 300, 5, 5)
    gt = _one_video_gt([
        dict(video_id=1, category_id=1, iscrowd=0, areas=[100, 100],
             segmentations=[_rle(box_a), _rle(box_a)]),
        dict(video_id=1, category_id=1, iscrowd=0, areas=[100, None],
             segmentations=[_rle(box_b), None]),
    ])
    preds = [
        dict(video_id=1, category_id=1, score=.9,
             segmentations=[_rle(box_a), _rle(inside)]),
        dict(video_id=1, category_id=1, score=.95,
             segmentations=[_rle(far), _rle(far)]),
        dict(video_id=1, category_id=2, score=.99,
             segmentations=[_rle(box_a), _rle(box_a)]),
    ]
    ious = video_mask_iou([p['segmentations'] for p in preds[:2]],
                          [a['segmentations'] for a in gt['annotations']])
    np.testing.assert_allclose(ious, [[.62, 0.], [0., 0.]], atol=1e-12)
    ap = .3 * 51 / 202
    # eps in the precision denominator: relative error ~1e-16
    expected = dict(
        AP=ap, AP50=51 / 202, AP75=0., APs=ap, APm=-1., APl=-1., AR1=0.,
        AR10=.15, AR100=.15, ARs=.15, ARm=-1., ARl=-1.)
    stats = evaluate_ytvis(gt, preds)
    for key, value in expected.items():
        assert stats[key] == pytest.approx(value, abs=1e-9), key


def test_crowd_and_edge_cases():
    # video 1: gt A of category 1, a crowd gt C of category 1 (50x50 in both
    #          frames), gt B of category 2 that is never predicted.
    # video 2: no gt at all.
    # Category-1 predictions, by score:
    #   .9 copy of A in video 2          -> FP at every threshold
    #   .8 copy of C                     -> IoU 1 with the crowd: ignored
    #   .7 50x42 inside C in both frames -> IoU 4200 / 5000 = .84 with C:
    #                                       ignored for t <= .80, FP above
    #   .5 copy of A                     -> TP
    # t in .50 .. .80 (7 thresholds): FP, TP -> precision .5 up to recall 1
    # t in .85 .. .95 (3 thresholds): FP, FP, TP -> precision 1/3
    # AP_1 = (7 * .5 + 3 / 3) / 10 = .45; AP_2 = 0 (never predicted)
    # -> AP = .225, AP50 = .25, AR100 = (1 + 0) / 2 = .5
    # Without the crowd gt both crowd detections are FPs everywhere:
    # FP, FP, FP, TP -> AP_1 = .25 -> AP = .125.
    seg_a = [_rle(_box(0, 0, 20, 20)), None]
    seg_crowd = [_rle(_box(100, 100, 50, 50)), _rle(_box(100, 100, 50, 50))]
    seg_b = [_rle(_box(200, 200, 30, 30)), _rle(_box(200, 200, 30, 30))]
    gt = _one_video_gt([
        dict(video_id=1, category_id=1, iscrowd=0, segmentations=seg_a),
        dict(video_id=1, category_id=1, iscrowd=1, segmentations=seg_crowd),
        dict(video_id=1, category_id=2, iscrowd=0, segmentations=seg_b),
    ])
    gt['videos'].append(dict(id=2, height=H, width=W, length=2))
    half = [_rle(_box(100, 100, 50, 42)), _rle(_box(100, 108, 50, 42))]
    preds = [
        dict(video_id=1, category_id=1, score=.5, segmentations=seg_a),
        dict(video_id=1, category_id=1, score=.8, segmentations=seg_crowd),
        dict(video_id=1, category_id=1, score=.7, segmentations=half),
        dict(video_id=2, category_id=1, score=.9, segmentations=seg_a),
    ]
    stats = evaluate_ytvis(gt, preds)  # no 'areas': computed from masks
    assert stats['AP'] == pytest.approx(.225, abs=1e-9)
    assert stats['AP50'] == pytest.approx(.25, abs=1e-9)
    assert stats['AR100'] == pytest.approx(.5)
    assert stats['APm'] == -1. and stats['APl'] == -1.
    no_crowd = copy.deepcopy(gt)
    del no_crowd['annotations'][1]
    assert evaluate_ytvis(no_crowd, preds)['AP'] == pytest.approx(
        .125, abs=1e-9)
    bad = preds + [dict(video_id=7, category_id=1, score=.1,
                        segmentations=seg_a)]
    with pytest.raises(ValueError, match='^accumulate_ytvis: predictions refer to videos '
                       'missing from the ground truth'):
        evaluate_ytvis(gt, bad)


@pytest.mark.parametrize('seed', [0, 1, 2, 3])
def test_matches_vendored_ytviseval(seed, monkeypatch):
    gt, preds = _random_dataset(seed)
    ours = _stats(copy.deepcopy(gt), copy.deepcopy(preds))
    ref = _vendored_stats(gt, preds, monkeypatch)
    assert (ours > -1).sum() >= 8  # the comparison covers real numbers
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)


def test_matches_vendored_many_detections(monkeypatch):
    # > 100 detections per (video, category): maxDets 1/10/100 all differ
    rng = np.random.default_rng(5)
    gt, preds = _random_dataset(4)
    length = gt['videos'][0]['length']
    for _ in range(120):
        box = _rand_box(rng)
        preds.append(
            dict(
                video_id=1,
                category_id=1,
                score=float(np.round(rng.random(), 2)),
                segmentations=[
                    None if rng.random() < .2 else _rle(_box(*box))
                    for _ in range(length)
                ]))
    ours = _stats(copy.deepcopy(gt), copy.deepcopy(preds))
    ref = _vendored_stats(gt, preds, monkeypatch)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)


# --------------------------------------------------------------------------
# registered metric, with data samples as Mask2FormerVideo produces them
# --------------------------------------------------------------------------
def _random_videos(seed, num_videos=4, num_classes=3):
    """Plain description of videos: per frame the gt instances and preds."""
    rng = np.random.default_rng(seed)
    videos, img_id, inst_id = [], 0, 0
    for vid in range(1, num_videos + 1):
        length = int(rng.integers(1, 4))
        gts = []
        for _ in range(int(rng.integers(0, 4))):
            inst_id += 1
            gts.append(
                dict(
                    instance_id=inst_id,
                    label=int(rng.integers(0, num_classes)),
                    crowd=int(rng.random() < .15),
                    box=_rand_box(rng),
                    frames=[rng.random() > .25 for _ in range(length)],
                    fmt=rng.choice(['rle', 'uncompressed', 'polygon'])))
        preds = []
        for track, g in enumerate(gts):
            if rng.random() < .8:
                jit = rng.integers(-10, 11, 4)
                preds.append(
                    dict(
                        track=track,
                        label=g['label'] if rng.random() < .8 else int(
                            rng.integers(0, num_classes)),
                        box=(g['box'][0] + jit[0], g['box'][1] + jit[1],
                             max(g['box'][2] + jit[2], 1),
                             max(g['box'][3] + jit[3], 1)),
                        scores=rng.random(length)))
        for extra in range(int(rng.integers(0, 2))):
            preds.append(
                dict(
                    track=len(gts) + extra,
                    label=int(rng.integers(0, num_classes)),
                    box=_rand_box(rng),
                    scores=rng.random(length)))
        frames = []
        for f in range(length):
            img_id += 1
            frames.append(img_id)
        videos.append(dict(id=vid, img_ids=frames, gts=gts, preds=preds))
    return videos


def _gt_mask(box, fmt):
    y0, x0, h, w = box
    if fmt == 'polygon':
        return [[x0, y0, x0 + w, y0, x0 + w, y0 + h, x0, y0 + h]]
    mask = _box(*box)
    return _uncompressed_rle(mask) if fmt == 'uncompressed' else _rle(mask)


def _track_data_sample(video):
    """A ``TrackDataSample.to_dict()`` as the Evaluator hands it over."""
    from mmdet.structures import DetDataSample, TrackDataSample
    from mmengine.structures import InstanceData
    samples = []
    length = len(video['img_ids'])
    for f, img_id in enumerate(video['img_ids']):
        preds = video['preds']
        masks = np.stack([_box(*p['box']) for p in preds]) if preds else \
            np.zeros((0, H, W), np.uint8)
        pred = InstanceData(
            bboxes=torch.zeros((len(preds), 4)),
            scores=torch.tensor([p['scores'][f] for p in preds],
                                dtype=torch.float32),
            labels=torch.tensor([p['label'] for p in preds],
                                dtype=torch.long),
            instances_id=torch.tensor([p['track'] for p in preds],
                                      dtype=torch.long),
            masks=torch.from_numpy(masks.astype(bool)))
        instances = []
        for g in video['gts']:
            if not g['frames'][f]:
                continue
            y0, x0, h, w = g['box']
            instances.append(
                dict(
                    bbox=[x0, y0, x0 + w, y0 + h],
                    bbox_label=g['label'],
                    ignore_flag=g['crowd'],
                    instance_id=g['instance_id'],
                    mask=_gt_mask(g['box'], g['fmt'])))
        sample = DetDataSample()
        sample.pred_track_instances = pred
        sample.set_metainfo(
            dict(
                img_id=img_id,
                video_id=video['id'],
                ori_video_length=length,
                ori_shape=(H, W),
                instances=instances))
        samples.append(sample)
    track = TrackDataSample()
    track.video_data_samples = samples
    return track.to_dict()


ALL_ITEMS = ['mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l', 'AR@1',
             'AR@10', 'AR@100', 'AR_s@100', 'AR_m@100', 'AR_l@100']
CLASSES = ('cat', 'dog', 'fox')


def _run_metric(cfg, videos, **meta):
    from mmengine.registry import METRICS
    metric = METRICS.build(cfg)
    metric.dataset_meta = dict(classes=CLASSES, **meta)
    for video in videos:
        metric.process(dict(inputs=None, data_samples=None),
                       [_track_data_sample(video)])
    return metric, metric.evaluate(size=len(videos))


@pytest.mark.parametrize('scope', ['mmdet', 'mmpretrain'])
def test_metric_matches_mmdet_metric(scope, monkeypatch):
    from mmengine.registry import init_default_scope
    init_default_scope(scope)
    videos = _random_videos(seed=3)
    assert any(v['preds'] for v in videos)
    cfg = dict(type='YouTubeVISAPMetric', metric_items=ALL_ITEMS,
               classwise=True)
    metric, ours = _run_metric(cfg, videos)
    assert type(metric).__name__ == 'YouTubeVISAPMetric'
    assert list(ours) == [f'youtube_vis/segm_{i}' for i in ALL_ITEMS]
    assert sum(v > 0 for v in ours.values()) >= 6
    # a second evaluation with the same metric (validation every N iters;
    # mmdet's parent raises KeyError 'images' here)
    for video in videos:
        metric.process({}, [_track_data_sample(video)])
    assert metric.evaluate(size=len(videos)) == ours
    if scope == 'mmdet':
        monkeypatch.setattr(np, 'float', float, raising=False)
        with contextlib.redirect_stdout(io.StringIO()):
            _, ref = _run_metric(
                dict(type='mmdet.YouTubeVISMetric',
                     metric_items=ALL_ITEMS), videos)
        assert ours == ref
        # ids 1..N in class order (YouTube-VIS 2021): the same numbers
        _, with_ids = _run_metric(cfg, videos, cat_ids=[1, 2, 3])
        assert with_ids == ref


def test_metric_perfect_empty_and_format_only(tmp_path):
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    videos = _random_videos(seed=1)
    for video in videos:  # predictions = gt
        video['gts'] = [dict(g, crowd=0, frames=[True] * len(video['img_ids']),
                             fmt='rle') for g in video['gts']]
        video['preds'] = [
            dict(track=i, label=g['label'], box=g['box'],
                 scores=np.full(len(video['img_ids']), .9))
            for i, g in enumerate(video['gts'])
        ]
    _, perfect = _run_metric(dict(type='YouTubeVISAPMetric'), videos)
    assert list(perfect) == [
        f'youtube_vis/segm_{i}' for i in ALL_ITEMS[:6]]
    assert all(v in (1., -1.) for v in perfect.values())
    assert perfect['youtube_vis/segm_mAP'] == 1.
    # no prediction in any video (mmdet's API raises IndexError here)
    for video in videos:
        video['preds'] = []
    _, empty = _run_metric(dict(type='YouTubeVISAPMetric'), videos)
    assert empty['youtube_vis/segm_mAP'] == 0.
    assert all(v in (0., -1.) for v in empty.values())
    # format_only: the server zip with results.json, no metrics
    videos = _random_videos(seed=2)
    prefix = str(tmp_path / 'results')
    _, out = _run_metric(
        dict(type='YouTubeVISAPMetric', format_only=True,
             outfile_prefix=prefix), videos)
    assert out == {}
    with zipfile.ZipFile(f'{prefix}.submission_file.zip') as zf:
        assert zf.namelist() == ['results.json']
        results = json.loads(zf.read('results.json'))
    assert len(results) == sum(len(v['preds']) for v in videos)
    lengths = {v['id']: len(v['img_ids']) for v in videos}
    for res in results:
        assert set(res) >= {'video_id', 'score', 'category_id',
                            'segmentations'}
        assert len(res['segmentations']) == lengths[res['video_id']]
        assert 1 <= res['category_id'] <= len(CLASSES)


def test_metric_rejects_bad_arguments():
    from mmsparse.evaluation import YouTubeVISAPMetric
    with pytest.raises(ValueError, match='^YouTubeVISAPMetric: metric_items'):
        YouTubeVISAPMetric(metric_items=['mAP', 'AP50'])
    with pytest.raises(ValueError, match='^YouTubeVISAPMetric: collect_device'):
        YouTubeVISAPMetric(collect_device='gpu')
    with pytest.raises(KeyError, match="YouTubeVISAPMetric: metric must be 'youtube_vis_ap'"):
        YouTubeVISAPMetric(metric='bbox')


# --------------------------------------------------------------------------
# distributed: 2 gloo processes, each evaluating half of the videos
# --------------------------------------------------------------------------
def _dist_worker(rank, port, workdir, videos):
    import torch.distributed as dist
    from mmengine.registry import init_default_scope
    os.chdir(workdir)  # mmdet collects parts under ./.dist_test
    dist.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
        world_size=2, timeout=datetime.timedelta(seconds=60))
    init_default_scope('mmdet')
    # DefaultSampler(round_up=True) pads rank 1 with video 0 again
    mine = videos[rank::2] + ([videos[0]] if rank == 1 else [])
    _, out = _run_metric(
        dict(type='YouTubeVISAPMetric', metric_items=ALL_ITEMS), mine)
    with open(osp.join(workdir, f'rank{rank}.json'), 'w') as f:
        json.dump(out, f)
    # No destroy_process_group: under load it can hang when the rank that
    # hosts the store has already left. The forked child ends in os._exit.
    dist.barrier()


def test_metric_distributed(tmp_path):
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    videos = _random_videos(seed=4, num_videos=5)
    _, single = _run_metric(
        dict(type='YouTubeVISAPMetric', metric_items=ALL_ITEMS), videos)
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    # fork: the children reuse the imported mmdet / mmsparse (spawn would
    # re-import them, ~30 s per process on a busy 2-core machine)
    context = mp.start_processes(
        _dist_worker, args=(port, str(tmp_path), videos), nprocs=2,
        join=False, start_method='fork')
    deadline = time.monotonic() + 120
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for proc in context.processes:
                proc.kill()
            pytest.fail('2-process evaluation did not finish in 120 s')
    for rank in (0, 1):
        with open(tmp_path / f'rank{rank}.json') as f:
            assert json.load(f) == single
