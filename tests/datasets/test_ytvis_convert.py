import importlib.util
import json
import os.path as osp
import re
import shutil

import mmdet
import pytest

from mmsparse.datasets.ytvis_convert import convert_youtubevis, split_cocovid

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _load(path):
    with open(path) as f:
        return json.load(f)


def _dump(obj, path):
    with open(path, 'w') as f:
        json.dump(obj, f)


def _load_script(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_output_matches_mmdet_converter(toy_copy, toy_converted, tmp_path):
    script = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'dataset_converters',
                      'youtubevis2coco.py')
    mmdet_conv = _load_script(script, 'mmdet_youtubevis2coco')
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
    toy_tool = _load_script(osp.join(REPO, 'tools', 'misc', 'make_toy_ytvis.py'), 'make_toy')
    out = tmp_path / 'toy_ytvis21'
    toy_tool.main(['--out', str(out), '--num-videos', '5', '--num-frames', '3', '--convert'])
    printed = capsys.readouterr().out
    ann = out / 'annotations'
    for name in ('train', 'train_sub', 'heldout'):
        path = ann / f'youtube_vis_2021_{name}.json'
        assert path.is_file() and str(path) in printed
    assert len(_load(ann / 'youtube_vis_2021_heldout.json')['videos']) == 1  # round(0.2 * 5)

    conv_tool = _load_script(
        osp.join(REPO, 'tools', 'dataset_converters', 'youtubevis2cocovid.py'), 'yt2cocovid')
    conv_tool.main(['-i', str(out), '-o', str(tmp_path / 'ann2'), '--heldout-ratio', '0.4'])
    assert len(_load(tmp_path / 'ann2' / 'youtube_vis_2021_heldout.json')['videos']) == 2
    with pytest.raises(SystemExit, match='train annotation file does not exist'):
        conv_tool.main(['-i', str(tmp_path / 'nowhere')])
