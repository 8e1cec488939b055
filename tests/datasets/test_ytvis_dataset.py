import json
import os.path as osp
import re
import shutil

import numpy as np
import pycocotools.mask as mask_util
import pytest
from mmdet.datasets import YouTubeVISDataset
from mmengine.registry import DefaultScope

from mmsparse.datasets import CheckedYouTubeVISDataset, ytvis_dataset
from mmsparse.datasets.toy_ytvis import TOY_YTVIS_CLASSES
from mmsparse.registry import DATASETS

TRAIN_PIPELINE = [
    dict(type='UniformRefFrameSample', num_ref_imgs=1, frame_range=2, filter_key_img=True),
    dict(
        type='TransformBroadcaster',
        share_random_params=True,
        transforms=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadTrackAnnotations', with_mask=True),
            dict(type='Resize', scale=(160, 96), keep_ratio=True),
        ]),
    dict(type='PackTrackInputs')
]


@pytest.fixture(autouse=True)
def mmdet_scope():
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield


def _cfg(root, ann_file, **kwargs):
    cfg = dict(
        dataset_version='2021',
        data_root=str(root),
        ann_file=ann_file,
        data_prefix=dict(img_path='train/JPEGImages'),
        metainfo=dict(classes=TOY_YTVIS_CLASSES),
        pipeline=[])
    cfg.update(kwargs)
    return cfg


@pytest.fixture
def toy_dataset_root(toy_root, toy_converted, tmp_path):
    """The raw toy set with the converted jsons in ``annotations/`` (a private copy)."""
    root = tmp_path / 'toy_ytvis21'
    shutil.copytree(toy_root, root)
    shutil.copytree(osp.dirname(toy_converted['train']), root / 'annotations')
    return root


def _video_ids(dataset):
    return [dataset.get_data_info(i)['video_id'] for i in range(len(dataset))]


@pytest.mark.parametrize('split', ['train_sub', 'heldout'])
def test_loads_like_mmdet(toy_dataset_root, split):
    ann_file = f'annotations/youtube_vis_2021_{split}.json'
    test_mode = split == 'heldout'
    ref = YouTubeVISDataset(**_cfg(toy_dataset_root, ann_file, test_mode=test_mode))
    ours = DATASETS.build(
        dict(type='CheckedYouTubeVISDataset',
             **_cfg(toy_dataset_root, ann_file, test_mode=test_mode)))
    assert isinstance(ours, CheckedYouTubeVISDataset)
    assert ours.metainfo['classes'] == TOY_YTVIS_CLASSES
    assert ours.cat_ids == ref.cat_ids == [1, 2, 3]
    with open(toy_dataset_root / ann_file) as f:
        data = json.load(f)
    assert len(ours) == len(ref) == len(data['videos'])
    for i in range(len(ours)):
        assert ours.get_data_info(i) == ref.get_data_info(i)
    labels = {inst['bbox_label'] for i in range(len(ours))
              for img in ours.get_data_info(i)['images'] for inst in img['instances']}
    assert labels == {0, 1, 2}
    if test_mode:  # all frames, also those without objects
        assert ours.num_all_imgs == len(data['images'])


def test_heldout_and_train_sub_disjoint(toy_dataset_root):
    sub = CheckedYouTubeVISDataset(
        **_cfg(toy_dataset_root, 'annotations/youtube_vis_2021_train_sub.json'))
    held = CheckedYouTubeVISDataset(
        **_cfg(toy_dataset_root, 'annotations/youtube_vis_2021_heldout.json', test_mode=True))
    assert not set(_video_ids(sub)) & set(_video_ids(held))
    assert len(sub) + len(held) == 10


def test_train_pipeline_runs(toy_dataset_root):
    dataset = DATASETS.build(
        dict(type='CheckedYouTubeVISDataset',
             **_cfg(toy_dataset_root, 'annotations/youtube_vis_2021_train_sub.json',
                    pipeline=TRAIN_PIPELINE)))
    item = dataset[0]
    assert tuple(item['inputs'].shape[:2]) == (2, 3)  # 2 frames, RGB
    sample = item['data_samples']
    assert len(sample.video_data_samples) == 2
    for frame in sample.video_data_samples:
        inst = frame.gt_instances
        assert len(inst) > 0 and inst.masks.masks.shape[0] == len(inst)
        assert set(inst.labels.tolist()) <= {0, 1, 2}


def test_valid_split_in_test_mode(toy_dataset_root):
    dataset = CheckedYouTubeVISDataset(
        **_cfg(toy_dataset_root, 'annotations/youtube_vis_2021_valid.json', test_mode=True,
               data_prefix=dict(img_path='valid/JPEGImages')))
    assert len(dataset) == 2 and dataset.num_all_imgs == 8
    # Without test_mode an annotation-free file cannot be a training set.
    with open(toy_dataset_root / 'annotations/youtube_vis_2021_valid.json') as f:
        data = json.load(f)
    data.pop('annotations')
    with open(toy_dataset_root / 'annotations/valid_noann.json', 'w') as f:
        json.dump(data, f)
    with pytest.raises(ValueError, match="missing top-level key 'annotations'"):
        CheckedYouTubeVISDataset(
            **_cfg(toy_dataset_root, 'annotations/valid_noann.json',
                   data_prefix=dict(img_path='valid/JPEGImages')))


def test_labels_follow_metainfo_order(toy_dataset_root):
    ann_file = 'annotations/youtube_vis_2021_train.json'
    classes = ('triangle', 'circle')  # not the json order, 'square' left out
    dataset = CheckedYouTubeVISDataset(**_cfg(toy_dataset_root, ann_file,
                                              metainfo=dict(classes=classes)))
    assert dataset.cat_ids == [3, 1]
    with open(toy_dataset_root / ann_file) as f:
        data = json.load(f)
    name_of = {c['id']: c['name'] for c in data['categories']}
    # (image id, instance id) identifies an annotation
    gt = {(a['image_id'], a['instance_id']): name_of[a['category_id']]
          for a in data['annotations']}
    loaded = {(img['img_id'], inst['instance_id']): classes[inst['bbox_label']]
              for i in range(len(dataset)) for img in dataset.get_data_info(i)['images']
              for inst in img['instances']}
    assert loaded == {k: v for k, v in gt.items() if v in classes}
    assert len(loaded) < len(gt)  # the squares are dropped


def _write_broken(root, edit, name='broken.json'):
    with open(root / 'annotations/youtube_vis_2021_train.json') as f:
        data = json.load(f)
    edit(data)
    with open(root / 'annotations' / name, 'w') as f:
        json.dump(data, f)
    return f'annotations/{name}'


@pytest.mark.parametrize('edit, message', [
    (lambda d: d.pop('images'), "missing top-level key 'images'"),
    (lambda d: d['images'][5].pop('file_name'), "video 2: image 6: missing key 'file_name'"),
    (lambda d: d['annotations'][0].pop('instance_id'), "annotation 1: missing key 'instance_id'"),
    (lambda d: d['annotations'][0].update(instance_id=0),
     "annotation 1: key 'instance_id' must be an int > 0"),
    (lambda d: d['annotations'][0].update(image_id=10**6),
     "annotation 1: key 'image_id' refers to image 1000000, which is not in 'images'"),
    (lambda d: d['annotations'][0].update(category_id=9),
     "annotation 1: key 'category_id' refers to category 9, which is not defined"),
    (lambda d: d['annotations'][1].update(id=1), "annotation 1: annotation id is used twice"),
    (lambda d: d['categories'].pop(), r"classes \['triangle'\] of the dataset's metainfo are "
     "not defined in 'categories'"),
])
def test_malformed_cocovid_raises(toy_dataset_root, edit, message):
    ann_file = _write_broken(toy_dataset_root, edit)
    with pytest.raises(ValueError, match=re.escape(ann_file) + '.*' + message):
        CheckedYouTubeVISDataset(**_cfg(toy_dataset_root, ann_file))


def test_missing_image_file_raises(toy_dataset_root):
    ann_file = 'annotations/youtube_vis_2021_train.json'
    with open(toy_dataset_root / ann_file) as f:
        img = json.load(f)['images'][9]
    (toy_dataset_root / 'train/JPEGImages' / img['file_name']).unlink()
    with pytest.raises(ValueError, match=f"video {img['video_id']}: key 'file_name' of images .*"
                       f"1 of 4 frame files do not exist: .*{img['file_name']}"):
        DATASETS.build(dict(type='CheckedYouTubeVISDataset', **_cfg(toy_dataset_root, ann_file)))
    # check_files=False defers the problem to loading time, like mmdet.
    dataset = CheckedYouTubeVISDataset(
        **_cfg(toy_dataset_root, ann_file, check_files=False))
    assert len(dataset) > 0


def test_resolves_under_mmpretrain_scope(toy_dataset_root):
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        dataset = DATASETS.build(
            dict(type='CheckedYouTubeVISDataset',
                 **_cfg(toy_dataset_root, 'annotations/youtube_vis_2021_heldout.json',
                        test_mode=True)))
    assert len(dataset) == 3


def _first_segmented(data):
    ann = next(a for a in data['annotations'] if a['segmentation'])
    img = next(im for im in data['images'] if im['id'] == ann['image_id'])
    return ann, img


def _half_resolution(segm):
    mask = mask_util.decode(segm)[::2, ::2]
    rle = mask_util.encode(np.asfortranarray(mask))
    return dict(size=list(rle['size']), counts=rle['counts'].decode())


@pytest.mark.parametrize('corrupt, message', [
    (_half_resolution, "RLE size [96, 160] does not match the frame's height x width "
     '[192, 320]'),
    (lambda s: dict(_half_resolution(s), size=[192, 320]),
     'RLE counts decode to 15360 pixels, but size is height x width = 61440'),
    (lambda s: [[10, 10, 20, 10]], 'polygon segmentation: polygon 0 has 4 coordinates'),
])
def test_mask_of_wrong_size_raises_before_training(toy_dataset_root, corrupt, message):
    # mmdet loads these and fails mid-training ("cannot reshape array of
    # size ..."), or never (a corrupted size).
    def edit(data):
        ann, img = _first_segmented(data)
        ann['segmentation'] = corrupt(ann['segmentation'])
        edit.where = (f"video {ann['video_id']}: annotation {ann['id']} (image {img['id']}): "
                      "key 'segmentation'")

    ann_file = _write_broken(toy_dataset_root, edit)
    with pytest.raises(ValueError, match='^CheckedYouTubeVISDataset: .*' + re.escape(
            f'{ann_file}: {edit.where}: {message}')):
        CheckedYouTubeVISDataset(**_cfg(toy_dataset_root, ann_file))


def test_polygon_segmentations_train(toy_dataset_root):
    # CocoVID files from other tools may hold polygons: they load, and the
    # pipeline rasterises them at the frame size.
    def to_polygons(data):
        for ann in data['annotations']:
            mask = mask_util.decode(ann['segmentation'])
            if mask.any():
                ys, xs = np.nonzero(mask)
                x0, y0, x1, y1 = (float(v) for v in (xs.min(), ys.min(), xs.max() + 1,
                                                     ys.max() + 1))
                ann['segmentation'] = [[x0, y0, x1, y0, x1, y1, x0, y1]]

    ann_file = _write_broken(toy_dataset_root, to_polygons, 'polygons.json')
    pipeline = [
        dict(type='UniformRefFrameSample', num_ref_imgs=1, frame_range=2, filter_key_img=True),
        dict(type='TransformBroadcaster', share_random_params=True, transforms=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadTrackAnnotations', with_mask=True)]),
        dict(type='PackTrackInputs')
    ]
    dataset = CheckedYouTubeVISDataset(**_cfg(toy_dataset_root, ann_file, pipeline=pipeline))
    frame = dataset[0]['data_samples'].video_data_samples[0]
    masks = frame.gt_instances.masks.masks
    assert masks.shape[1:] == (192, 320) and len(masks) > 0
    # each mask is a filled box, as the polygon says
    for mask in masks:
        ys, xs = np.nonzero(mask)
        assert mask.sum() == (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)


def test_cat_ids_in_metainfo(toy_dataset_root):
    # non-contiguous ids, listed in another order than the classes
    ids = {'circle': 40, 'square': 1, 'triangle': 26}

    def remap(data):
        old = {c['id']: ids[c['name']] for c in data['categories']}
        data['categories'] = sorted(
            [dict(c, id=old[c['id']]) for c in data['categories']], key=lambda c: -c['id'])
        for ann in data['annotations']:
            ann['category_id'] = old[ann['category_id']]

    ann_file = _write_broken(toy_dataset_root, remap, 'ids.json')
    classes = ('triangle', 'circle', 'square')
    dataset = CheckedYouTubeVISDataset(
        **_cfg(toy_dataset_root, ann_file, metainfo=dict(classes=classes)))
    assert dataset.cat_ids == [26, 40, 1]
    assert dataset.metainfo['cat_ids'] == [26, 40, 1]
    assert dataset.metainfo['classes'] == classes


def test_check_rle_counts_can_be_skipped(toy_dataset_root):
    def corrupt(data):
        ann, _ = _first_segmented(data)
        ann['segmentation'] = dict(_half_resolution(ann['segmentation']), size=[192, 320])

    ann_file = _write_broken(toy_dataset_root, corrupt)
    with pytest.raises(ValueError, match='RLE counts decode to 15360 pixels'):
        CheckedYouTubeVISDataset(**_cfg(toy_dataset_root, ann_file))
    dataset = CheckedYouTubeVISDataset(**_cfg(toy_dataset_root, ann_file, check_rle_counts=False))
    assert len(dataset) == 10


def test_construction_errors_name_the_class(toy_dataset_root):
    with pytest.raises(ValueError, match="^CheckedYouTubeVISDataset: dataset_version must be "
                       "'2019' or '2021', got '2022'"):
        CheckedYouTubeVISDataset(
            **_cfg(toy_dataset_root, 'annotations/youtube_vis_2021_train.json',
                   dataset_version='2022'))
    (toy_dataset_root / 'annotations' / 'bad.json').write_text('{"videos": [')
    with pytest.raises(ValueError, match='^CheckedYouTubeVISDataset: .*bad.json: not valid json'):
        CheckedYouTubeVISDataset(**_cfg(toy_dataset_root, 'annotations/bad.json'))


def _videos_with_classes(data, names):
    """Ids of the videos with an annotation of a class in ``names`` (from the json)."""
    cat = {c['id']: c['name'] for c in data['categories']}
    video_of = {img['id']: img['video_id'] for img in data['images']}
    return {video_of[a['image_id']] for a in data['annotations'] if cat[a['category_id']] in names}


@pytest.mark.parametrize('classes', [('circle', ), ('square', 'triangle')])
def test_class_subset_leaves_out_videos_without_its_classes(toy_dataset_root, classes,
                                                            monkeypatch):
    logged = []
    monkeypatch.setattr(ytvis_dataset, 'print_log', lambda msg, **kw: logged.append(msg))
    ann_file = 'annotations/youtube_vis_2021_train.json'
    with open(toy_dataset_root / ann_file) as f:
        data = json.load(f)
    expected = _videos_with_classes(data, classes)
    num_videos = len(data['videos'])
    dataset = CheckedYouTubeVISDataset(
        **_cfg(toy_dataset_root, ann_file, metainfo=dict(classes=classes),
               pipeline=TRAIN_PIPELINE))
    assert set(_video_ids(dataset)) == expected
    dropped = num_videos - len(expected)
    assert any(f'{dropped} of {num_videos} videos have no frame with an instance of the '
               f'classes {classes}' in msg for msg in logged) == (dropped > 0)
    # every kept video samples a clip (mmdet kept empty videos: "Sample larger than population")
    for i in range(len(dataset)):
        labels = {int(lb) for frame in dataset[i]['data_samples'].video_data_samples
                  for lb in frame.gt_instances.labels}
        assert labels and labels <= set(range(len(classes)))
    # test mode keeps every video and frame (evaluation needs them all)
    full = CheckedYouTubeVISDataset(**_cfg(toy_dataset_root, ann_file, test_mode=True,
                                           metainfo=dict(classes=classes)))
    assert len(full) == num_videos


def test_class_subset_of_one_circle_drops_some_videos(toy_dataset_root):
    """The toy set used above has videos without circles (so the test above
    exercises the filter, not only the no-op path)."""
    with open(toy_dataset_root / 'annotations/youtube_vis_2021_train.json') as f:
        data = json.load(f)
    assert len(_videos_with_classes(data, ('circle', ))) < len(data['videos'])


def test_class_subset_without_any_instance_raises(toy_dataset_root):
    def only_circles(data):
        circle = next(c['id'] for c in data['categories'] if c['name'] == 'circle')
        data['annotations'] = [a for a in data['annotations'] if a['category_id'] == circle]

    ann_file = _write_broken(toy_dataset_root, only_circles)
    with pytest.raises(ValueError, match=r"^CheckedYouTubeVISDataset: .*broken.json: none of "
                       r"its 10 videos has a frame with an instance of metainfo\['classes'\] "
                       r"\('square', 'triangle'\)"):
        CheckedYouTubeVISDataset(**_cfg(toy_dataset_root, ann_file,
                                        metainfo=dict(classes=('square', 'triangle'))))


def test_missing_annotation_file_is_one_line(toy_dataset_root):
    with pytest.raises(FileNotFoundError) as err:
        CheckedYouTubeVISDataset(**_cfg(toy_dataset_root, 'annotations/nowhere.json'))
    message = str(err.value)
    assert '\n' not in message
    assert message.startswith('CheckedYouTubeVISDataset: annotation file ')
    assert str(toy_dataset_root / 'annotations/nowhere.json') in message
    assert 'docs/data_preparation.md' in message
