"""Results carry the dataset's own category ids (non-contiguous, reordered classes).

mmdet's YouTubeVISMetric writes ``category_id = label + 1`` and rebuilds the
ground truth with ids 1..N: self-consistent locally, wrong in the results json
and the server zip for any dataset whose ids are not 1..N in class order.
"""
import json
import zipfile

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from mmengine.logging import MMLogger

from mmsparse.datasets import CheckedYouTubeVISDataset
from mmsparse.datasets.toy_ytvis import make_toy_ytvis
from mmsparse.datasets.ytvis_convert import convert_youtubevis
from mmsparse.evaluation import YouTubeVISAPMetric
from mmsparse.evaluation.functional import evaluate_ytvis

IDS = {'circle': 40, 'square': 1, 'triangle': 26}
CLASSES = ('triangle', 'circle', 'square')  # not the json's order
ITEMS = ['mAP', 'mAP_50', 'mAP_75']


@pytest.fixture(scope='module')
def dataset_and_raw(tmp_path_factory):
    """A toy set with category ids 40/1/26 (json lists them 40, 26, 1), converted."""
    root = tmp_path_factory.mktemp('ytvis_ids')
    make_toy_ytvis(str(root), num_videos=16, num_frames=3, seed=11)
    path = root / 'train' / 'instances.json'
    raw = json.loads(path.read_text())
    old = {c['id']: IDS[c['name']] for c in raw['categories']}
    raw['categories'] = sorted([dict(c, id=old[c['id']]) for c in raw['categories']],
                               key=lambda c: -c['id'])
    for ann in raw['annotations']:
        ann['category_id'] = old[ann['category_id']]
    path.write_text(json.dumps(raw))
    written = convert_youtubevis(str(root), heldout_ratio=0.5, seed=0, log=None)
    dataset = CheckedYouTubeVISDataset(
        dataset_version='2021', data_root=str(root), ann_file=written['heldout'],
        data_prefix=dict(img_path='train/JPEGImages'), metainfo=dict(classes=CLASSES),
        test_mode=True, pipeline=[])
    heldout = {v['id'] for v in json.loads(open(written['heldout']).read())['videos']}
    # the dataset's own ground truth, in the raw YouTube-VIS format
    raw_gt = dict(categories=raw['categories'],
                  videos=[v for v in raw['videos'] if v['id'] in heldout],
                  annotations=[a for a in raw['annotations'] if a['video_id'] in heldout])
    return dataset, raw_gt


def _video_sample(video, mislabel=(), extra_label=None):
    """What Mask2FormerVideo hands the metric for one video: gt = the dataset's
    instances, predictions = the gt masks with their labels, except tracks in
    ``mislabel`` (label + 1) and an optional extra track with ``extra_label``."""
    from mmdet.structures import DetDataSample, TrackDataSample
    from mmengine.structures import InstanceData
    samples = []
    for frame in video['images']:
        h, w = frame['height'], frame['width']
        insts = frame['instances']
        masks = [mask_util.decode(i['mask']).astype(bool) for i in insts]
        labels = [(i['bbox_label'] + (i['instance_id'] in mislabel)) % len(CLASSES)
                  for i in insts]
        ids = [i['instance_id'] for i in insts]
        if extra_label is not None:
            masks.append(np.ones((h, w), bool))
            labels.append(extra_label)
            ids.append(10**6)
        scores = [0.9 - 0.05 * (k % 5) for k in range(len(ids))]
        mask_tensor = torch.from_numpy(np.stack(masks)) if masks else \
            torch.zeros((0, h, w), dtype=torch.bool)
        pred = InstanceData(
            bboxes=torch.zeros((len(ids), 4)),
            scores=torch.tensor(scores, dtype=torch.float32),
            labels=torch.tensor(labels, dtype=torch.long),
            instances_id=torch.tensor(ids, dtype=torch.long),
            masks=mask_tensor)
        sample = DetDataSample()
        sample.pred_track_instances = pred
        sample.set_metainfo(dict(img_id=frame['img_id'], video_id=video['video_id'],
                                 ori_video_length=len(video['images']), ori_shape=(h, w),
                                 instances=insts))
        samples.append(sample)
    track = TrackDataSample()
    track.video_data_samples = samples
    return track.to_dict()


def _run(dataset, **kwargs):
    metric = YouTubeVISAPMetric(metric_items=ITEMS, **kwargs)
    metric.dataset_meta = dataset.metainfo
    videos = [dataset.get_data_info(i) for i in range(len(dataset))]
    tracks = sorted({inst['instance_id'] for v in videos for im in v['images']
                     for inst in im['instances']})
    mislabel = set(tracks[::3])  # some predictions of the wrong class
    for video in videos:
        metric.process({}, [_video_sample(video, mislabel)])
    return metric, metric.evaluate(size=len(videos))


def test_results_and_local_ap_use_the_datasets_ids(dataset_and_raw, tmp_path):
    dataset, raw_gt = dataset_and_raw
    assert dataset.metainfo['cat_ids'] == [26, 40, 1]
    metric, local = _run(dataset)
    assert metric.categories == [dict(id=26, name='triangle'), dict(id=40, name='circle'),
                                 dict(id=1, name='square')]
    assert 0 < local['youtube_vis/segm_mAP'] < 1

    prefix = str(tmp_path / 'results')
    _, out = _run(dataset, format_only=True, outfile_prefix=prefix)
    assert out == {}
    with zipfile.ZipFile(f'{prefix}.submission_file.zip') as zf:
        results = json.loads(zf.read('results.json'))
    with open(f'{prefix}.json') as f:
        assert json.load(f) == results
    assert {r['category_id'] for r in results} == {1, 26, 40}  # (label + 1: 1, 2, 3)
    # Scored against the dataset's own ground truth, the exported results give
    # the AP reported locally (mmdet's label + 1 gave a much lower AP here).
    ours = evaluate_ytvis(raw_gt, results)
    for item, stat in zip(ITEMS, ('AP', 'AP50', 'AP75')):
        assert round(ours[stat], 3) == pytest.approx(local[f'youtube_vis/segm_{item}'])


def test_predicted_label_without_class_is_dropped_with_warning(dataset_and_raw, monkeypatch):
    dataset, _ = dataset_and_raw
    messages = []
    logger = MMLogger.get_current_instance()
    monkeypatch.setattr(logger, 'warning', lambda msg, *a, **k: messages.append(msg))
    metric = YouTubeVISAPMetric(format_only=True, outfile_prefix=None)
    metric.dataset_meta = dataset.metainfo
    video = dataset.get_data_info(0)
    metric.process({}, [_video_sample(video, extra_label=7)])
    preds = metric.results[0][0]  # the extra track is left out
    assert {p['category_id'] for p in preds} <= {1, 26, 40}
    num_tracks = len({i['instance_id'] for im in video['images'] for i in im['instances']})
    assert len(preds) == num_tracks
    assert any('predicted instance has label 7' in m and "num_classes" in m for m in messages)


def test_without_cat_ids_falls_back_to_label_plus_one_with_warning(monkeypatch):
    messages = []
    logger = MMLogger.get_current_instance()
    monkeypatch.setattr(logger, 'warning', lambda msg, *a, **k: messages.append(msg))
    metric = YouTubeVISAPMetric()
    metric.dataset_meta = dict(classes=CLASSES)
    assert metric._category_ids() == [1, 2, 3]
    assert any("no 'cat_ids'" in m for m in messages)
    metric.dataset_meta = dict(classes=CLASSES, cat_ids=[1, 2])
    with pytest.raises(ValueError, match=r"^YouTubeVISAPMetric: dataset_meta\['cat_ids'\]"):
        metric._category_ids()
