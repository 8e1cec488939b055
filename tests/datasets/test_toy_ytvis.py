import filecmp
import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_util

from mmsparse.datasets.toy_ytvis import (TOY_YTVIS_CLASSES, ToyOutline,
                                         ToyShape, make_toy_ytvis,
                                         render_closure_toy_video,
                                         render_hard_toy_video,
                                         render_toy_video)


def _load(root, split='train'):
    with open(root / split / 'instances.json') as f:
        return json.load(f)


def test_deterministic_from_seed(tmp_path):
    kwargs = dict(num_videos=3, num_frames=3, width=96, height=64)
    make_toy_ytvis(str(tmp_path / 'a'), seed=7, **kwargs)
    make_toy_ytvis(str(tmp_path / 'b'), seed=7, **kwargs)
    make_toy_ytvis(str(tmp_path / 'c'), seed=8, **kwargs)
    a, b, c = (tmp_path / n / 'train' for n in 'abc')
    assert (a / 'instances.json').read_bytes() == (b / 'instances.json').read_bytes()
    assert (a / 'instances.json').read_bytes() != (c / 'instances.json').read_bytes()
    frames = sorted(p.relative_to(a) for p in a.rglob('*.jpg'))
    assert len(frames) == 9
    _, mismatch, errors = filecmp.cmpfiles(a, b, [str(p) for p in frames], shallow=False)
    assert not mismatch and not errors
    assert (a / frames[0]).read_bytes() != (c / frames[0]).read_bytes()


def test_raw_layout_and_annotations_consistent(toy_root):
    raw = _load(toy_root)
    assert [c['name'] for c in raw['categories']] == list(TOY_YTVIS_CLASSES)
    assert [c['id'] for c in raw['categories']] == [1, 2, 3]
    videos = {v['id']: v for v in raw['videos']}
    assert len(videos) == 10
    ann_ids = [a['id'] for a in raw['annotations']]
    assert len(set(ann_ids)) == len(ann_ids)
    per_video = {vid: [] for vid in videos}
    for ann in raw['annotations']:
        per_video[ann['video_id']].append(ann)
    assert all(1 <= len(anns) <= 3 for anns in per_video.values())

    for vid, video in videos.items():
        assert video['length'] == len(video['file_names']) == 4
        for name in video['file_names']:
            img = Image.open(toy_root / 'train' / 'JPEGImages' / name)
            assert img.size == (video['width'], video['height']) == (320, 192)
        masks = []
        for ann in per_video[vid]:
            assert len(ann['segmentations']) == len(ann['bboxes']) == len(ann['areas']) == 4
            frame_masks = []
            for segm, bbox, area in zip(ann['segmentations'], ann['bboxes'], ann['areas']):
                if segm is None:
                    assert bbox is None and area is None
                    frame_masks.append(np.zeros((192, 320), bool))
                    continue
                assert isinstance(segm['counts'], str) and segm['size'] == [192, 320]
                m = mask_util.decode(segm).astype(bool)
                ys, xs = np.nonzero(m)
                assert area == m.sum() > 0
                assert bbox == [xs.min(), ys.min(), xs.max() - xs.min() + 1,
                                ys.max() - ys.min() + 1]
                frame_masks.append(m)
            masks.append(np.stack(frame_masks))
        if len(masks) > 1:  # visible masks never overlap
            assert np.stack(masks).sum(0).max() == 1


def test_objects_enter_and_leave(toy_root):
    raw = _load(toy_root)
    partial = [a for a in raw['annotations'] if None in a['segmentations']]
    assert partial, 'expected objects that are absent in some frames'
    for ann in raw['annotations']:
        assert any(s is not None for s in ann['segmentations'])

    rng = np.random.default_rng(0)
    modes = set()
    for _ in range(12):
        video = render_toy_video(rng, num_frames=6, height=96, width=160)
        for k, obj in enumerate(video.objects):
            modes.add(obj.mode)
            if obj.mode == 'enter':  # starts fully outside the frame
                assert not video.amodal_masks[k, 0].any() and video.amodal_masks[k, -1].any()
            if obj.mode == 'leave':
                assert video.amodal_masks[k, 0].any() and not video.amodal_masks[k, -1].any()
    assert {'enter', 'leave'} <= modes


def test_occlusion_follows_depth_order():
    rng = np.random.default_rng(1)
    overlaps = 0
    for _ in range(15):
        video = render_toy_video(rng, num_frames=6)
        vis, amodal = video.visible_masks, video.amodal_masks
        assert not (vis & ~amodal).any()  # visible part lies inside the shape
        assert vis.sum(0).max() <= 1  # disjoint
        # Every covered pixel is visible for the front-most (last drawn) object.
        covered = amodal.any(0)
        assert np.array_equal(vis.any(0), covered)
        for back in range(len(video.objects)):
            for front in range(back + 1, len(video.objects)):
                both = amodal[back] & amodal[front]
                if not both.any():
                    continue
                overlaps += 1
                assert not vis[back][both].any() and vis[front][both].all()
                # The frame shows the front object's colour there.
                pix = video.frames[both].astype(float).mean(0)
                d_front = np.abs(pix - video.objects[front].color).sum()
                d_back = np.abs(pix - video.objects[back].color).sum()
                if video.objects[front].label != video.objects[back].label:
                    assert d_front < d_back
    assert overlaps > 0, 'expected some occlusions'


def test_classes_look_different():
    rng = np.random.default_rng(2)
    colors = {name: [] for name in TOY_YTVIS_CLASSES}
    for _ in range(12):
        video = render_toy_video(rng, num_frames=3)
        for k, obj in enumerate(video.objects):
            m = video.visible_masks[k]
            if m.any():
                colors[obj.name].append(video.frames[m].astype(float).mean(0))
    dominant = {name: int(np.argmax(np.mean(c, 0))) for name, c in colors.items() if c}
    assert dominant == {'circle': 0, 'square': 1, 'triangle': 2}


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='num_frames'):
        make_toy_ytvis(str(tmp_path), num_videos=2, num_frames=1)
    with pytest.raises(ValueError, match='width and height'):
        make_toy_ytvis(str(tmp_path), num_videos=2, width=16)
    with pytest.raises(ValueError, match="mode must be one of"):
        make_toy_ytvis(str(tmp_path), num_videos=2, mode='medium')


def test_hard_mode_deterministic_and_annotated(tmp_path):
    kwargs = dict(num_videos=4, num_frames=3, width=160, height=96, mode='hard')
    make_toy_ytvis(str(tmp_path / 'a'), seed=1, **kwargs)
    make_toy_ytvis(str(tmp_path / 'b'), seed=1, **kwargs)
    make_toy_ytvis(str(tmp_path / 'easy'), seed=1, **dict(kwargs, mode='easy'))
    a, b = (_load(tmp_path / n) for n in 'ab')
    assert a == b and a['info']['mode'] == 'hard'
    assert a != _load(tmp_path / 'easy') and 'mode' not in _load(tmp_path / 'easy')['info']
    assert [c['name'] for c in a['categories']] == list(TOY_YTVIS_CLASSES)
    for ann in a['annotations']:
        assert len(ann['segmentations']) == 3
        assert any(s is not None for s in ann['segmentations'])


def test_hard_mode_distractors_unannotated_and_occluding():
    rng = np.random.default_rng(4)
    kinds, occluded_by_distractor = set(), 0
    for _ in range(10):
        video = render_hard_toy_video(rng, num_frames=4, height=96, width=160)
        vis, amodal = video.visible_masks, video.amodal_masks
        assert len(video.objects) == len(vis) >= 1 and video.distractors
        assert all(isinstance(o, ToyShape) and o.label >= 0 for o in video.objects)
        assert all(d.label == -1 for d in video.distractors)
        assert not (vis & ~amodal).any() and vis.sum(0).max() <= 1
        distractor_px = np.stack([
            np.stack([d.amodal_mask(t, 96, 160) for t in range(4)]) for d in video.distractors
        ]).any(0)
        assert distractor_px.any()
        # Distractor pixels in front of an object are not in its mask.
        occluded_by_distractor += int((amodal & ~vis & distractor_px[None]).any())
        kinds |= {d.kind for d in video.distractors}
    assert kinds == {'ring', 'cross', 'hollow_triangle'}
    assert occluded_by_distractor > 0


def test_hard_mode_shapes_and_look_alikes():
    t0 = np.zeros(1)
    center = np.array([[40., 30.]])

    def shape(kind, inner=0.5):
        return ToyShape(kind, -1, np.zeros(3), 12., center, t0, inner=inner).amodal_mask(
            0, 60, 80)

    disc, ring = shape('circle'), shape('ring')
    square, cross = shape('square'), shape('cross', inner=0.35)
    assert disc[30, 40] and not ring[30, 40]  # the ring is hollow
    assert (ring & ~disc).sum() == 0 and ring.sum() > 0.5 * disc.sum()
    assert square[30, 40] and cross[30, 40]
    assert square[30 + 10, 40 + 10] and not cross[30 + 10, 40 + 10]  # no corners
    assert (cross & ~square).sum() == 0


def test_hard_mode_colour_does_not_tell_objects():
    """Distractors wear the colour of the class they imitate and saturated
    clutter covers part of the background, so a coloured patch is not
    necessarily an object (the easy mode's background is grey)."""
    rng = np.random.default_rng(2)
    clutter = []
    for _ in range(12):
        video = render_hard_toy_video(rng, num_frames=2, height=96, width=160)
        for obj in video.objects:
            assert int(np.argmax(obj.color)) == obj.label
        for d in video.distractors:
            look_alike = {'ring': 'circle', 'cross': 'square', 'hollow_triangle': 'triangle'}
            assert int(np.argmax(d.color)) == TOY_YTVIS_CLASSES.index(look_alike[d.kind])
        frame = video.frames[0].astype(int)
        moving = np.zeros((96, 160), bool)
        for shape in video.objects + video.distractors:
            moving |= shape.amodal_mask(0, 96, 160)
        saturated = frame.max(-1) - frame.min(-1) > 70
        clutter.append(saturated[~moving].mean())
    assert np.mean(clutter) > 0.08


def test_closure_mode_deterministic_and_valid(tmp_path):
    kwargs = dict(num_videos=4, num_frames=3, width=160, height=96, mode='closure')
    make_toy_ytvis(str(tmp_path / 'a'), seed=2, **kwargs)
    make_toy_ytvis(str(tmp_path / 'b'), seed=2, **kwargs)
    make_toy_ytvis(str(tmp_path / 'c'), seed=3, **kwargs)
    a, b, c = (_load(tmp_path / n) for n in 'abc')
    assert a == b and a != c and a['info']['mode'] == 'closure'
    frames = sorted(p.relative_to(tmp_path / 'a') for p in (tmp_path / 'a').rglob('*.jpg'))
    assert len(frames) == 12
    for f in frames:
        assert (tmp_path / 'a' / f).read_bytes() == (tmp_path / 'b' / f).read_bytes()
    assert [c['name'] for c in a['categories']] == list(TOY_YTVIS_CLASSES)
    for ann in a['annotations']:
        assert 1 <= ann['category_id'] <= 3 and len(ann['segmentations']) == 3
        assert any(s is not None for s in ann['segmentations'])
        for segm, area in zip(ann['segmentations'], ann['areas']):
            if segm is not None:
                assert mask_util.decode(segm).sum() == area > 0


def test_closure_mode_masks_are_filled_interiors():
    rng = np.random.default_rng(5)
    for _ in range(6):
        video = render_closure_toy_video(rng, num_frames=3, height=96, width=160)
        vis, amodal = video.visible_masks, video.amodal_masks
        assert all(isinstance(o, ToyOutline) and o.label >= 0 and o.gap == 0
                   for o in video.objects)
        assert not (vis & ~amodal).any() and vis.sum(0).max() <= 1
        for k, obj in enumerate(video.objects):
            for t in range(3):
                stroke = obj.stroke_mask(t, 96, 160)
                # the outline is part of the mask, and the mask is much more than the
                # outline: the interior is filled
                assert not (stroke & ~amodal[k, t]).any()
                if amodal[k, t].sum() > 200:
                    assert amodal[k, t].sum() > 2.5 * stroke.sum()
    # A fully visible circle: the mask is the disc up to the stroke's outer edge.
    circle = ToyOutline('circle', 0, 10., np.array([[40., 30.]]), np.zeros(1), 2.)
    mask = circle.amodal_mask(0, 60, 80)
    ys, xs = np.mgrid[0:60, 0:80] + 0.5
    rho = np.hypot(xs - 40, ys - 30)
    assert mask[rho <= 10.9].all() and not mask[rho > 11.1].any()
    assert not circle.stroke_mask(0, 60, 80)[30, 40]  # the center is not stroke
    # Square and triangle outlines lie on the edges of the filled polygons that
    # the hard mode draws (square: half side r; triangle: a vertex on +u).
    square = ToyOutline('square', 1, 10., np.array([[40., 30.]]), np.zeros(1), 2.)
    stroke, mask = square.stroke_mask(0, 60, 80), square.amodal_mask(0, 60, 80)
    assert stroke[30, 49] and stroke[30, 50] and not stroke[30, 48] and not stroke[30, 40]
    assert mask[30, 40] and mask[30, 50] and not mask[30, 51] and mask[20:40, 30:50].all()
    triangle = ToyOutline('triangle', 2, 12., np.array([[40., 30.]]), np.zeros(1), 2.)
    assert triangle.stroke_mask(0, 60, 80)[30, 51] and not triangle.stroke_mask(0, 60, 80)[30, 40]
    assert not triangle.amodal_mask(0, 60, 80)[30, 53] and triangle.amodal_mask(0, 60, 80)[30, 40]


def test_closure_mode_clutter_is_open_and_unannotated():
    rng = np.random.default_rng(6)
    kinds = set()
    for _ in range(6):
        video = render_closure_toy_video(rng, num_frames=2, height=96, width=160)
        assert len(video.distractors) >= 4
        for d in video.distractors:
            kinds.add(d.kind)
            assert d.label == -1
            assert (d.gap > 0) == (d.kind != 'polyline')
            for t in range(2):  # clutter masks are its strokes only (no filled interior)
                assert np.array_equal(d.amodal_mask(t, 96, 160), d.stroke_mask(t, 96, 160))
        # the annotated masks are the closed outlines' interiors only
        assert len(video.objects) == len(video.visible_masks) >= 1
        assert all(o.gap == 0 and o.kind in TOY_YTVIS_CLASSES for o in video.objects)
    assert kinds == {'arc', 'open_square', 'open_triangle', 'polyline'}
    # An arc is a circle outline with a gap: same stroke elsewhere, nothing in the gap.
    center, angle = np.array([[40., 30.]]), np.zeros(1)
    closed = ToyOutline('circle', 0, 12., center, angle, 2.).stroke_mask(0, 60, 80)
    arc = ToyOutline('arc', -1, 12., center, angle, 2., gap=np.pi / 2).stroke_mask(0, 60, 80)
    assert (arc & ~closed).sum() == 0 and 0.6 * closed.sum() < arc.sum() < 0.85 * closed.sum()
    assert not arc[30 + 12, 40] and closed[30 + 12, 40]  # the gap is around +v (down)


def test_closure_mode_inside_looks_like_outside():
    """Objects and clutter share one ink colour, and an object's interior shows the
    background texture: the mean colour inside the objects (outline excluded) is
    close to the background's, unlike the easy mode's coloured objects."""
    rng = np.random.default_rng(7)
    diffs = []
    for _ in range(8):
        video = render_closure_toy_video(rng, num_frames=1, height=96, width=160)
        frame = video.frames[0].astype(float)
        strokes = np.stack([o.stroke_mask(0, 96, 160) for o in video.objects]).any(0)
        inside = video.visible_masks[:, 0].any(0) & ~strokes
        if inside.sum() < 100:
            continue
        diffs.append(np.abs(frame[inside].mean(0) - frame[~inside].mean(0)).max())
        ink = [frame[o.stroke_mask(0, 96, 160) & video.visible_masks[k, 0]]
               for k, o in enumerate(video.objects)]
        clutter = frame[np.stack([d.stroke_mask(0, 96, 160) for d in video.distractors]).any(0)
                        & ~video.visible_masks[:, 0].any(0)]
        ink = np.concatenate(ink)
        if len(ink) > 20 and len(clutter) > 20:
            assert np.abs(np.median(ink, 0) - np.median(clutter, 0)).max() < 12
    assert len(diffs) >= 4 and np.median(diffs) < 25
