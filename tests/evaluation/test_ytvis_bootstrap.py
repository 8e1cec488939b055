import json

import numpy as np
import pytest
from pycocotools import mask as mask_util

from mmsparse.evaluation.functional import evaluate_ytvis
from mmsparse.evaluation.functional.ytvis_bootstrap import (
    YTVISVideoRecords, bootstrap_ap_difference, resample_ytvis)

H, W, T = 12, 16, 3


def _rle(mask):
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle['counts'] = rle['counts'].decode()
    return rle


def _box(rng):
    m = np.zeros((H, W), bool)
    y, x = rng.integers(0, H - 4), rng.integers(0, W - 4)
    m[y:y + rng.integers(3, 6), x:x + rng.integers(3, 7)] = True
    return m


def _toy_eval_set(seed=0, num_videos=14, quality=0.5):
    """Ground truth and predictions with everything the matching handles:
    absent frames, crowd instances, videos without predictions, false
    positives of other categories and tied scores."""
    rng = np.random.default_rng(seed)
    gt = dict(videos=[], annotations=[], categories=[dict(id=1, name='a'), dict(id=2, name='b')])
    preds = []
    for v in range(1, num_videos + 1):
        gt['videos'].append(dict(id=v, height=H, width=W, length=T))
        for _ in range(rng.integers(1, 4)):
            masks = [_box(rng) if rng.random() > 0.15 else None for _ in range(T)]
            if all(m is None for m in masks):
                masks[0] = _box(rng)
            cat = int(rng.integers(1, 3))
            gt['annotations'].append(dict(
                id=len(gt['annotations']) + 1, video_id=v, category_id=cat,
                segmentations=[_rle(m) if m is not None else None for m in masks],
                areas=[int(m.sum()) if m is not None else None for m in masks],
                iscrowd=int(rng.random() < 0.1)))
            if v % 5 == 0:
                continue  # a video without predictions
            for _ in range(rng.integers(1, 3)):  # near-copies of the truth
                noisy = []
                for m in masks:
                    if m is None:
                        noisy.append(None)
                        continue
                    m = np.roll(m, int(rng.integers(0, 2)), axis=1)
                    m = m ^ (rng.random((H, W)) < quality * 0.04)
                    noisy.append(_rle(m))
                preds.append(dict(video_id=v, category_id=cat if rng.random() > 0.2 else 3 - cat,
                                  score=float(np.round(rng.random(), 1)),  # ties
                                  segmentations=noisy))
        preds.append(dict(video_id=v, category_id=int(rng.integers(1, 3)), score=0.3,
                          segmentations=[_rle(_box(rng)) for _ in range(T)]))
    return gt, preds


def _assert_stats_equal(stats, reference):
    for key in ('AP', 'AP50', 'AP75'):
        assert stats[key] == pytest.approx(reference[key], abs=1e-12), key


def test_full_set_equals_evaluate_ytvis():
    gt, preds = _toy_eval_set()
    records = YTVISVideoRecords.from_predictions(gt, preds)
    reference = evaluate_ytvis(gt, preds)
    assert 0.05 < reference['AP'] < 0.95  # neither trivial nor empty
    _assert_stats_equal(records.stats(), reference)
    _assert_stats_equal(records.stats(np.arange(records.num_videos)), reference)


def test_resampled_stats_equal_renamed_videos():
    """A video drawn twice counts as two videos, as if renamed."""
    gt, preds = _toy_eval_set(seed=1)
    records = YTVISVideoRecords.from_predictions(gt, preds)
    rng = np.random.default_rng(5)
    for _ in range(6):
        idx = rng.integers(0, records.num_videos, records.num_videos)
        assert len(set(idx.tolist())) < len(idx)  # duplicates present
        new_gt, new_preds = resample_ytvis(gt, preds, idx)
        assert [v['id'] for v in new_gt['videos']] == list(range(1, len(idx) + 1))
        _assert_stats_equal(records.stats(idx), evaluate_ytvis(new_gt, new_preds))
    idx = np.array([3, 3, 3, 7])
    _assert_stats_equal(records.stats(idx), evaluate_ytvis(*resample_ytvis(gt, preds, idx)))


def test_duplicates_are_not_merged():
    """Evaluating a draw with a repeated *id* (no renaming) would merge the
    copies into one video; the records keep them apart."""
    gt = dict(videos=[dict(id=1, height=H, width=W), dict(id=2, height=H, width=W)],
              categories=[dict(id=1, name='a')], annotations=[])
    m = np.zeros((H, W), bool)
    m[2:6, 2:6] = True
    for v in (1, 2):
        gt['annotations'].append(dict(id=v, video_id=v, category_id=1, iscrowd=0,
                                      segmentations=[_rle(m)] * T, areas=[16] * T))
    # video 1: perfect; video 2: a higher-scored false positive, then the hit
    wrong = np.zeros((H, W), bool)
    wrong[8:11, 10:14] = True
    preds = [dict(video_id=1, category_id=1, score=0.5, segmentations=[_rle(m)] * T),
             dict(video_id=2, category_id=1, score=0.9, segmentations=[_rle(wrong)] * T),
             dict(video_id=2, category_id=1, score=0.4, segmentations=[_rle(m)] * T)]
    records = YTVISVideoRecords.from_predictions(gt, preds)
    assert records.stats([0, 0])['AP'] == pytest.approx(1.0)
    drawn = records.stats([0, 1, 1])
    _assert_stats_equal(drawn, evaluate_ytvis(*resample_ytvis(gt, preds, [0, 1, 1])))
    assert drawn['AP'] != pytest.approx(records.stats([0, 1])['AP'])


def test_json_round_trip():
    gt, preds = _toy_eval_set(seed=2)
    records = YTVISVideoRecords.from_predictions(gt, preds)
    loaded = YTVISVideoRecords.from_dict(json.loads(json.dumps(records.to_dict())))
    idx = np.random.default_rng(0).integers(0, records.num_videos, records.num_videos)
    assert loaded.stats(idx) == records.stats(idx)
    assert loaded.stats() == records.stats()


def test_paired_bootstrap_over_videos():
    gt, preds_good = _toy_eval_set(seed=3, num_videos=30, quality=0.2)
    _, preds_bad = _toy_eval_set(seed=3, num_videos=30, quality=1.5)
    good = YTVISVideoRecords.from_predictions(gt, preds_good)
    bad = YTVISVideoRecords.from_predictions(gt, preds_bad)
    same = bootstrap_ap_difference(good, good, n_boot=50)
    assert same['diff'] == same['low'] == same['high'] == 0.
    result = bootstrap_ap_difference(good, bad, n_boot=200, seed=1)
    assert result['metric'] == 'AP' and result['n'] == 30
    assert result['diff'] == pytest.approx(good.stats()['AP'] - bad.stats()['AP'])
    assert 0 < result['low'] < result['diff'] < result['high']
    again = bootstrap_ap_difference(good, bad, n_boot=200, seed=1)
    assert again == result  # the seed fixes the draws


def test_bad_input():
    gt, preds = _toy_eval_set(seed=4)
    records = YTVISVideoRecords.from_predictions(gt, preds)
    last = gt['videos'][-1]['id']
    other = YTVISVideoRecords.from_predictions(
        dict(gt, videos=gt['videos'][:-1],
             annotations=[a for a in gt['annotations'] if a['video_id'] != last]),
        [p for p in preds if p['video_id'] != last])
    with pytest.raises(ValueError, match='same videos'):
        bootstrap_ap_difference(records, other)
    with pytest.raises(ValueError, match='metric must be one of'):
        records.score_fn('AR100')
    with pytest.raises(IndexError, match='indices must be in'):
        records.stats([records.num_videos])
    with pytest.raises(ValueError, match='"videos"'):
        YTVISVideoRecords.from_predictions(gt['annotations'], preds)
