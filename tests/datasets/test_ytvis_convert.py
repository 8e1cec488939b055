import json
import os.path as osp
import re
import shutil
import subprocess
import sys

import mmdet
import numpy as np
import pycocotools.mask as mask_util
import pytest
from script_loader import load_script

from mmsparse.datasets.ytvis_convert import convert_youtubevis, split_cocovid

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _load(path):
    with open(path) as f:
        return json.load(f)


def _dump(obj, path):
    with open(path, 'w') as f:
        json.dump(obj, f)


def test_train_output_matches_mmdet_converter(toy_copy, toy_converted, tmp_path):
    script = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'dataset_converters',
                      'youtubevis2coco.py')
    mmdet_conv = load_script(script)
    mmdet_conv.convert_vis(str(toy_copy), str(tmp_path), '2021', 'train')
    theirs = _load(tmp_path / 'youtube_vis_2021_train.json')
    ours = _load(toy_converted['train'])
    assert ours == theirs
    assert list(ours) == list(theirs)  # same key order as well
    assert all(a['instance_id'] > 0 for a in ours['annotations'])
    # Frames without any object are kept (mmdet drops them only at train time).
    with_ann = {a['image_id'] for a in ours['annotations']}
    assert len(with_ann) <= len(ours['images'])


def test_file_names_relative_to_jpeg_dir(toy_root, toy_converted):
    cocovid = _load(toy_converted['train'])
    for img in cocovid['images']:
        assert osp.isfile(toy_root / 'train' / 'JPEGImages' / img['file_name'])
    names = {v['id']: v['name'] for v in cocovid['videos']}
    assert all(img['file_name'].startswith(names[img['video_id']] + '/')
               for img in cocovid['images'])


def test_heldout_split_disjoint_and_keeps_gt(toy_converted):
    full = _load(toy_converted['train'])
    sub, held = _load(toy_converted['train_sub']), _load(toy_converted['heldout'])
    sub_v, held_v = {v['id'] for v in sub['videos']}, {v['id'] for v in held['videos']}
    assert not sub_v & held_v
    assert sub_v | held_v == {v['id'] for v in full['videos']}
    assert len(held_v) == 3  # round(0.3 * 10)
    for part, vids in ((sub, sub_v), (held, held_v)):
        assert part['categories'] == full['categories']
        assert part['images'] == [im for im in full['images'] if im['video_id'] in vids]
        assert part['annotations'] == [a for a in full['annotations'] if a['video_id'] in vids]
    assert held['annotations'], 'held-out part must keep its ground truth'
    # Deterministic, and the seed matters.
    assert split_cocovid(full, 0.3, seed=0)[1] == held
    other = {v['id'] for s in range(1, 6) for v in split_cocovid(full, 0.3, seed=s)[1]['videos']}
    assert other != held_v


def test_valid_split_without_annotations(toy_converted):
    valid = _load(toy_converted['valid'])
    assert len(valid['videos']) == 2 and len(valid['images']) == 8
    assert valid['annotations'] == []
    assert 'test' not in toy_converted


def test_version_2019_layout(toy_copy, toy_converted, tmp_path):
    shutil.move(str(toy_copy / 'train' / 'instances.json'), str(toy_copy / 'train.json'))
    written = convert_youtubevis(str(toy_copy), str(tmp_path), version='2019', log=None)
    assert set(written) == {'train'}
    assert osp.basename(written['train']) == 'youtube_vis_2019_train.json'
    assert _load(written['train']) == _load(toy_converted['train'])


def test_tolerant_class_report(toy_copy, tmp_path):
    path = toy_copy / 'train' / 'instances.json'
    raw = _load(path)
    remap = {1: 10, 2: 20, 3: 30}
    for cat in raw['categories']:
        cat['id'] = remap[cat['id']]
    raw['categories'].append(dict(id=99, name='hexagon', supercategory='shape'))
    for ann in raw['annotations']:
        ann['category_id'] = remap[ann['category_id']]
    _dump(raw, path)
    lines = []
    written = convert_youtubevis(str(toy_copy), str(tmp_path), log=lines.append)
    report = '\n'.join(lines)
    assert 'hexagon' in report
    hexagon_line = next(line for line in report.splitlines() if 'hexagon' in line)
    assert ' 0 objects' in hexagon_line
    cats = {a['category_id'] for a in _load(written['train'])['annotations']}
    assert cats <= {10, 20, 30}


def _break(root, edit):
    path = root / 'train' / 'instances.json'
    raw = _load(path)
    edit(raw)
    _dump(raw, path)
    return str(path)


def test_missing_top_level_key(toy_copy, tmp_path):
    path = _break(toy_copy, lambda raw: raw.pop('annotations'))
    with pytest.raises(ValueError, match=re.escape(f"{path}: missing top-level key 'annotations'")):
        convert_youtubevis(str(toy_copy), str(tmp_path), log=None)


def test_missing_annotation_key(toy_copy, tmp_path):
    def edit(raw):
        raw['annotations'][1].pop('bboxes')
        edit.vid = raw['annotations'][1]['video_id']

    _break(toy_copy, edit)
    with pytest.raises(ValueError, match=f"video {edit.vid}: annotation 2: missing key 'bboxes'"):
        convert_youtubevis(str(toy_copy), str(tmp_path), log=None)


def test_missing_video_key(toy_copy, tmp_path):
    _break(toy_copy, lambda raw: raw['videos'][2].pop('file_names'))
    with pytest.raises(ValueError, match="video 3: missing key 'file_names'"):
        convert_youtubevis(str(toy_copy), str(tmp_path), log=None)


def test_wrong_segmentations_length(toy_copy, tmp_path):
    def edit(raw):
        ann = raw['annotations'][0]
        ann['segmentations'] = ann['segmentations'][:-1]
        edit.vid = ann['video_id']

    _break(toy_copy, edit)
    with pytest.raises(ValueError, match=f"video {edit.vid}: annotation 1: key 'segmentations' "
                       'has 3 entries, but the video has 4 frames'):
        convert_youtubevis(str(toy_copy), str(tmp_path), log=None)


def test_unknown_category(toy_copy, tmp_path):
    _break(toy_copy, lambda raw: raw['annotations'][0].update(category_id=7))
    with pytest.raises(ValueError, match="key 'category_id' refers to category 7, which is not "
                       "defined in 'categories'"):
        convert_youtubevis(str(toy_copy), str(tmp_path), log=None)


def test_missing_frame_file(toy_copy, tmp_path):
    raw = _load(toy_copy / 'train' / 'instances.json')
    name = raw['videos'][4]['file_names'][2]
    (toy_copy / 'train' / 'JPEGImages' / name).unlink()
    with pytest.raises(ValueError, match=f"video 5: key 'file_names': 1 of 4 frame files do not "
                       f'exist: .*{name}'):
        convert_youtubevis(str(toy_copy), str(tmp_path), log=None)
    # The check can be skipped.
    assert convert_youtubevis(str(toy_copy), str(tmp_path), check_files=False, log=None)


def test_missing_train_json_and_bad_args(tmp_path):
    with pytest.raises(ValueError, match='train annotation file does not exist'):
        convert_youtubevis(str(tmp_path), log=None)
    with pytest.raises(ValueError, match='heldout_ratio'):
        convert_youtubevis(str(tmp_path), heldout_ratio=1.0, log=None)
    with pytest.raises(ValueError, match='version'):
        convert_youtubevis(str(tmp_path), version='2022', log=None)


def test_cli_tools(tmp_path, capsys):
    toy_tool = load_script('tools/misc/make_toy_ytvis.py')
    out = tmp_path / 'toy_ytvis21'
    toy_tool.main(['--out', str(out), '--num-videos', '5', '--num-frames', '3', '--convert'])
    printed = capsys.readouterr().out
    ann = out / 'annotations'
    for name in ('train', 'train_sub', 'heldout'):
        path = ann / f'youtube_vis_2021_{name}.json'
        assert path.is_file() and str(path) in printed
    assert len(_load(ann / 'youtube_vis_2021_heldout.json')['videos']) == 1  # round(0.2 * 5)

    conv_tool = load_script('tools/dataset_converters/youtubevis2cocovid.py')
    conv_tool.main(['-i', str(out), '-o', str(tmp_path / 'ann2'), '--heldout-ratio', '0.4'])
    assert len(_load(tmp_path / 'ann2' / 'youtube_vis_2021_heldout.json')['videos']) == 2
    with pytest.raises(SystemExit, match='train annotation file does not exist'):
        conv_tool.main(['-i', str(tmp_path / 'nowhere')])


def _first_rle(raw):
    """(annotation index, frame) of the first RLE segmentation of the raw json."""
    for i, ann in enumerate(raw['annotations']):
        for t, segm in enumerate(ann['segmentations']):
            if segm:
                return i, t
    raise AssertionError('no segmentation')


def _half_resolution(segm):
    mask = mask_util.decode(segm)[::2, ::2]
    rle = mask_util.encode(np.asfortranarray(mask))
    return dict(size=list(rle['size']), counts=rle['counts'].decode())


def test_rle_of_wrong_size_is_rejected(toy_copy, tmp_path):
    # Half-resolution masks converted with exit 0 and failed mid-training in
    # mmdet's BitmapMasks ("cannot reshape array of size ...").
    def edit(raw):
        i, t = _first_rle(raw)
        ann = raw['annotations'][i]
        ann['segmentations'][t] = _half_resolution(ann['segmentations'][t])
        edit.where = f"video {ann['video_id']}: annotation {ann['id']}: frame {t}"

    path = _break(toy_copy, edit)
    with pytest.raises(ValueError, match=re.escape(
            f"{path}: {edit.where}: key 'segmentations': RLE size [96, 160] does not match "
            "the frame's height x width [192, 320]")):
        convert_youtubevis(str(toy_copy), str(tmp_path), log=None)


def test_rle_with_corrupted_size_is_rejected(toy_copy, tmp_path):
    # counts of a half-resolution mask under the frame's size: decodes to a
    # quarter of the pixels (a short run passed unnoticed).
    def edit(raw):
        i, t = _first_rle(raw)
        ann = raw['annotations'][i]
        ann['segmentations'][t] = dict(_half_resolution(ann['segmentations'][t]),
                                       size=[192, 320])
        edit.where = f"video {ann['video_id']}: annotation {ann['id']}: frame {t}"

    path = _break(toy_copy, edit)
    with pytest.raises(ValueError, match=re.escape(
            f"{path}: {edit.where}: key 'segmentations': RLE counts decode to 15360 pixels, "
            'but size is height x width = 61440')):
        convert_youtubevis(str(toy_copy), str(tmp_path), log=None)


def _box_polygon(segm):
    """The outline (pixel corners) of an RLE's bounding box as a polygon (empty: unchanged)."""
    mask = mask_util.decode(segm) if segm else None
    if mask is None or not mask.any():
        return segm
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = (float(v) for v in (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def test_polygons_become_rles_of_the_frame(toy_copy, toy_converted, tmp_path):
    raw = _load(toy_copy / 'train' / 'instances.json')
    for ann in raw['annotations']:
        ann['segmentations'] = [_box_polygon(segm) for segm in ann['segmentations']]
    _dump(raw, toy_copy / 'train' / 'instances.json')
    cocovid = _load(convert_youtubevis(str(toy_copy), str(tmp_path), log=None)['train'])
    # the converter's order: video, frame, annotation of the video
    polygons = [(ann['segmentations'][t], video['height'], video['width'])
                for video in raw['videos']
                for t in range(len(video['file_names']))
                for ann in raw['annotations']
                if ann['video_id'] == video['id'] and ann['bboxes'][t] is not None]
    assert len(cocovid['annotations']) == len(polygons) > 0
    assert sum(isinstance(p, list) for p, _, _ in polygons) > len(polygons) // 2
    for ann, (poly, height, width) in zip(cocovid['annotations'], polygons):
        segm = ann['segmentation']
        assert segm['size'] == [height, width] and isinstance(segm['counts'], str)
        if not isinstance(poly, list):
            continue
        ref = mask_util.decode(mask_util.merge(mask_util.frPyObjects(poly, height, width)))
        assert ref.sum() > 0 and np.array_equal(mask_util.decode(segm), ref)
    # everything else as converted from the original RLEs
    assert [dict(a, segmentation=None) for a in cocovid['annotations']] == \
        [dict(a, segmentation=None) for a in _load(toy_converted['train'])['annotations']]


def test_malformed_polygon_is_rejected(toy_copy, tmp_path):
    def edit(raw):
        i, t = _first_rle(raw)
        ann = raw['annotations'][i]
        ann['segmentations'][t] = [[10, 10, 20, 10]]
        edit.where = f"video {ann['video_id']}: annotation {ann['id']}: frame {t}"

    path = _break(toy_copy, edit)
    with pytest.raises(ValueError, match=re.escape(
            f"{path}: {edit.where}: key 'segmentations': polygon segmentation: polygon 0 has "
            '4 coordinates')):
        convert_youtubevis(str(toy_copy), str(tmp_path), log=None)


def test_argument_errors_name_the_function(tmp_path, toy_converted):
    with pytest.raises(ValueError, match=r'^convert_youtubevis: heldout_ratio must be in \[0, 1\)'):
        convert_youtubevis(str(tmp_path), heldout_ratio=1.0, log=None)
    with pytest.raises(ValueError, match='^convert_youtubevis: version must be one of'):
        convert_youtubevis(str(tmp_path), version='2022', log=None)
    with pytest.raises(ValueError, match="^convert_youtubevis: splits must include 'train'"):
        convert_youtubevis(str(tmp_path), splits=('valid', ), log=None)
    with pytest.raises(ValueError, match=r'^split_cocovid: heldout_ratio must be in \(0, 1\)'):
        split_cocovid(_load(toy_converted['train']), 0.)


def test_converter_starts_without_torch(toy_root, tmp_path):
    # The converter is json + numpy + pycocotools: it must not pay for torch,
    # mmdet and mmpretrain (mmsparse/__init__.py imports them, ~10 s).
    code = (
        'import runpy, sys\n'
        f'sys.argv = ["youtubevis2cocovid.py", "-i", {str(toy_root)!r}, '
        f'"-o", {str(tmp_path / "out")!r}, "--heldout-ratio", "0.3"]\n'
        'runpy.run_path("tools/dataset_converters/youtubevis2cocovid.py", run_name="__main__")\n'
        'heavy = [m for m in ("torch", "mmdet", "mmpretrain", "mmengine", "mmcv") '
        'if m in sys.modules]\n'
        'print("HEAVY", heavy)\n')
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'HEAVY []' in proc.stdout, proc.stdout[-2000:]
    written = _load(tmp_path / 'out' / 'youtube_vis_2021_train.json')
    assert written == _load(convert_youtubevis(str(toy_root), str(tmp_path / 'ref'),
                                               log=None)['train'])
