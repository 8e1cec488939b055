"""Mask encoding checks: the vectorised RLE parser, MaskChecker and polygon conversion."""
import numpy as np
import pycocotools.mask as mask_util
import pytest

from mmsparse.datasets.ytvis_rle import (MaskChecker, rle_string_counts,
                                         to_compressed_rle)


def _runs(mask):
    """Run lengths of a mask in column-major order, starting with background."""
    flat = np.asfortranarray(mask).ravel(order='F').astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    return [0] + runs if flat[0] else runs


def _encode(mask):
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(size=list(rle['size']), counts=rle['counts'].decode())


def _masks():
    rng = np.random.default_rng(0)
    yield np.zeros((7, 5), bool)
    yield np.ones((7, 5), bool)
    yield rng.random((30, 40)) > .5  # many short runs, negative deltas
    big = np.zeros((400, 700), bool)
    big[10:390, 5:600] = True  # runs > 2**15: values of 4 groups
    yield big
    for _ in range(10):
        h, w = rng.integers(1, 60, 2)
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        mask = np.zeros((h, w), bool)
        mask[y0:y0 + rng.integers(1, h + 1), x0:x0 + rng.integers(1, w + 1)] = True
        yield mask


def test_rle_string_counts_matches_pycocotools_encoding():
    masks = list(_masks())
    strings = [_encode(m)['counts'] for m in masks]
    # one batch, str and bytes mixed
    decoded = rle_string_counts([s if i % 2 else s.encode() for i, s in enumerate(strings)])
    for mask, counts in zip(masks, decoded):
        assert counts is not None
        assert counts.tolist() == _runs(mask)
        assert counts.sum() == mask.size


@pytest.mark.parametrize('bad', [
    'P',  # ends inside a value (continuation bit set)
    '2~0',  # character outside '0'..'o'
    'é',  # not ascii
    'oooooooo1',  # a value of 9 groups
    '0' + 'a',  # 'a' = 49: the second run is negative
])
def test_rle_string_counts_rejects_malformed(bad):
    good = _encode(np.eye(4, dtype=bool))['counts']
    out = rle_string_counts([good, bad, good])
    assert out[1] is None
    assert out[0].tolist() == out[2].tolist() == _runs(np.eye(4, dtype=bool))
    assert rle_string_counts([''])[0].tolist() == []


def _check(segm, height, width):
    checker = MaskChecker()
    checker.add(segm, height, width, 'a.json: video 3: annotation 7: frame 1', 'segmentations')
    checker.finish()


def test_mask_checker_accepts_good_masks():
    mask = np.zeros((12, 20), bool)
    mask[2:8, 3:15] = True
    _check(_encode(mask), 12, 20)
    _check(dict(size=[12, 20], counts=_runs(mask)), 12, 20)  # uncompressed
    _check([[3, 2, 15, 2, 15, 8]], 12, 20)  # polygon
    _check(None, 12, 20)


@pytest.mark.parametrize('segm, message', [
    # half-resolution RLE of a 12x20 frame
    (lambda m: _encode(m[::2, ::2]), r"RLE size \[6, 10\] does not match the frame's height x "
     r'width \[12, 20\]'),
    # corrupted size: counts of a 6x10 mask, size of the frame
    (lambda m: dict(_encode(m[::2, ::2]), size=[12, 20]),
     'RLE counts decode to 60 pixels, but size is height x width = 240'),
    (lambda m: dict(_encode(m), counts='P'), "RLE counts 'P' is not a valid compressed RLE"),
    (lambda m: dict(size=[12, 20], counts=[0, 200]), 'uncompressed RLE counts must be'),
    (lambda m: [[1, 2, 3, 4]], 'polygon 0 has 4 coordinates'),
    (lambda m: [[1, 2, 3, 4, 5, 'x']], 'polygon 0 is not a flat list of numbers'),
    (lambda m: dict(counts='abc'), "must be an RLE dict with 'size' and 'counts'"),
])
def test_mask_checker_errors_name_where_and_key(segm, message):
    mask = np.zeros((12, 20), bool)
    mask[2:8, 3:15] = True
    with pytest.raises(ValueError, match="^a.json: video 3: annotation 7: frame 1: key "
                       f"'segmentations': .*{message}"):
        _check(segm(mask), 12, 20)


def test_mask_checker_batches():
    mask = np.zeros((12, 20), bool)
    mask[2:8, 3:15] = True
    good, bad = _encode(mask), dict(_encode(mask[::2]), size=[12, 20])
    checker = MaskChecker(batch_chars=8)  # flushes while adding
    checker.add(good, 12, 20, 'f: video 1: annotation 1', 'segmentation')
    with pytest.raises(ValueError, match='annotation 2: .*decode to 120 pixels'):
        for _ in range(3):
            checker.add(bad, 12, 20, 'f: video 1: annotation 2', 'segmentation')
        checker.finish()


def test_polygon_to_compressed_rle_matches_pycocotools():
    polygon = [[3.0, 2.0, 15.5, 2.0, 15.5, 8.0, 3.0, 8.0], [1, 9, 4, 9, 1, 11]]
    rle = to_compressed_rle(polygon, 12, 20)
    assert rle['size'] == [12, 20] and isinstance(rle['counts'], str)
    ref = mask_util.decode(mask_util.merge(mask_util.frPyObjects(polygon, 12, 20)))
    assert np.array_equal(mask_util.decode(rle), ref) and ref.sum() > 0
    _check(rle, 12, 20)
    mask = ref.astype(bool)
    assert to_compressed_rle(dict(size=[12, 20], counts=_runs(mask)), 12, 20) == _encode(mask)
    encoded = _encode(mask)
    assert to_compressed_rle(encoded, 12, 20) is encoded
