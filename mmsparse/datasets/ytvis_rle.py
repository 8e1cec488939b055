"""Checks of mask encodings in YouTube-VIS / COCO json files (numpy + pycocotools, no torch).

pycocotools decodes a compressed RLE into a ``size[0] x size[1]`` buffer without
checking that the run lengths add up to it: a wrong ``size`` or corrupted
``counts`` surfaces only when mmdet reshapes the decoded mask mid-training (or
never). :func:`rle_string_counts` parses the compressed ``counts`` strings of
many masks at once (vectorised, about as fast as reading the json) so that the
checks can run on a whole dataset before training.

Compressed format (pycocotools ``rleFrString``): each run length is written in
5-bit groups, least significant first, as characters ``chr(48 + group)``; bit
``0x20`` of a group means "more groups follow", bit ``0x10`` of the last group
is the sign. From the third run on, the value stored is the difference to the
run two places earlier.
"""
from typing import List, Optional, Sequence, Union

import numpy as np
import pycocotools.mask as mask_util

# A uint32 run length needs at most 7 groups of 5 bits (with the sign bit).
_MAX_GROUPS = 7


def rle_string_counts(strings: Sequence[Union[str, bytes]]) -> List[Optional[np.ndarray]]:
    """Decode compressed RLE ``counts`` strings into run lengths, vectorised.

    Args:
        strings (sequence of str | bytes): ``counts`` of compressed RLEs.

    Returns:
        list[np.ndarray | None]: Per string its run lengths (int64), or None
        where the string is malformed: a character outside ``'0'..'o'``, a
        truncated last value, a value of more than 7 groups or a negative run.
    """
    num = len(strings)
    out: List[Optional[np.ndarray]] = [None] * num
    raw, bad = [], np.zeros(num, bool)
    for i, s in enumerate(strings):
        if isinstance(s, str):
            try:
                s = s.encode('ascii')
            except UnicodeEncodeError:
                s, bad[i] = b'', True
        elif not isinstance(s, bytes):
            s, bad[i] = b'', True
        raw.append(s)
    lens = np.array([len(s) for s in raw], np.int64)
    if lens.sum() == 0:
        return [None if bad[i] else np.zeros(0, np.int64) for i in range(num)]
    chars = np.frombuffer(b''.join(raw), np.uint8).astype(np.int16) - 48
    sid = np.repeat(np.arange(num), lens)  # string of each character
    bad[sid[(chars < 0) | (chars > 63)]] = True
    chars &= 0x3f
    end = (chars & 0x20) == 0  # last group of a value
    last = np.cumsum(lens)[lens > 0] - 1
    bad[sid[last[~end[last]]]] = True  # truncated: ends inside a value
    end[last] = True  # so that no value runs into the next string
    ends = np.flatnonzero(end)
    starts = np.concatenate([[0], ends[:-1] + 1])
    groups = ends - starts + 1
    bad[sid[ends[groups > _MAX_GROUPS]]] = True
    low = (chars & 0x1f).astype(np.int64)
    if (groups > 1).any():  # shift the later groups of multi-group values
        pos = np.arange(len(chars)) - np.repeat(starts, groups)
        low <<= 5 * np.minimum(pos, _MAX_GROUPS)
    values = np.add.reduceat(low, starts)
    negative = (chars[ends] & 0x10) != 0  # sign-extend: x |= -1 << 5 * groups
    values[negative] -= np.int64(1) << (5 * np.minimum(groups[negative], _MAX_GROUPS + 1))

    # Undo the delta coding: runs 1, 3, 5, ... and runs 2, 4, 6, ... are
    # running sums within their string; run 0 stands alone.
    vsid = sid[ends]
    first = np.searchsorted(vsid, np.arange(num))
    idx = np.arange(len(values)) - first[vsid]
    counts = values.copy()
    for parity in (idx % 2 == 1, (idx % 2 == 0) & (idx > 0)):
        part = np.where(parity, values, 0)
        csum = np.concatenate([[0], np.cumsum(part)])
        counts[parity] = (csum[1:] - csum[first][vsid])[parity]
    bad[vsid[counts < 0]] = True
    bounds = np.concatenate([first, [len(values)]]).tolist()
    for i in np.flatnonzero(~bad).tolist():
        out[i] = counts[bounds[i]:bounds[i + 1]]
    return out


def polygon_problem(segm) -> Optional[str]:
    """Why a polygon segmentation is unusable, or None if it is fine.

    A polygon segmentation is a non-empty list of polygons, each a flat list
    of at least 3 ``x, y`` pairs (mmdet silently ignores an instance whose
    polygons are all shorter).
    """
    if not segm:
        return 'an empty polygon list'
    for j, poly in enumerate(segm):
        if not isinstance(poly, (list, tuple)) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in poly):
            return f'polygon {j} is not a flat list of numbers'
        if len(poly) < 6 or len(poly) % 2:
            return (f'polygon {j} has {len(poly)} coordinates; a polygon needs an even '
                    'number >= 6 (x, y pairs of at least 3 points)')
    return None


def to_compressed_rle(segm, height: int, width: int) -> dict:
    """A (checked) polygon or uncompressed RLE as a compressed RLE with a str ``counts``.

    Polygons of one object are merged into one mask, as mmdet and the
    YouTube-VIS API do; compressed RLEs are returned unchanged.
    """
    if isinstance(segm, list):
        rle = mask_util.merge(mask_util.frPyObjects(segm, height, width))
    elif isinstance(segm['counts'], list):
        rle = mask_util.frPyObjects(segm, height, width)
    else:
        return segm
    counts = rle['counts']
    return dict(size=[int(v) for v in rle['size']],
                counts=counts.decode('ascii') if isinstance(counts, bytes) else counts)


class MaskChecker:
    """Checks the segmentations of a json file against their frame size.

    :meth:`add` checks what is cheap at once (type, ``size`` == frame height x
    width, polygons, uncompressed counts) and queues compressed ``counts``;
    :meth:`finish` decodes the queue in batches (:func:`rle_string_counts`)
    and raises for the first string that does not decode to ``height x width``
    pixels. Errors are one line: ``<where>: key '<key>': <problem>``.

    Args:
        decode_counts (bool): Decode compressed ``counts`` (vectorised; a few
            seconds per 10M characters of RLE strings). Defaults to True.
        batch_chars (int): Characters decoded per batch (bounds the memory).
            Defaults to 2**22.
    """

    def __init__(self, decode_counts: bool = True, batch_chars: int = 2**22) -> None:
        self.decode_counts = decode_counts
        self.batch_chars = batch_chars
        self._queue: list = []
        self._queued_chars = 0

    def add(self, segm, height: int, width: int, where: str, key: str) -> None:
        """Check one frame's segmentation (``None``/empty = absent) of a ``height x width`` frame.

        Raises:
            ValueError: Naming ``where`` and ``key``.
        """
        if segm is None or (isinstance(segm, list) and not segm):
            return
        if isinstance(segm, list):
            problem = polygon_problem(segm)
            if problem:
                raise ValueError(f"{where}: key '{key}': polygon segmentation: {problem}")
            return
        if not isinstance(segm, dict) or 'counts' not in segm or 'size' not in segm:
            got = sorted(segm) if isinstance(segm, dict) else type(segm).__name__
            raise ValueError(f"{where}: key '{key}': a segmentation must be an RLE dict with "
                             f"'size' and 'counts' or a polygon list, got {got}")
        size = segm['size']
        if not isinstance(size, (list, tuple)) or list(size) != [height, width]:
            raise ValueError(f"{where}: key '{key}': RLE size {size} does not match the frame's "
                             f'height x width [{height}, {width}]')
        counts = segm['counts']
        if isinstance(counts, list):
            if not all(isinstance(c, int) and c >= 0 for c in counts) or \
                    sum(counts) != height * width:
                raise ValueError(f"{where}: key '{key}': uncompressed RLE counts must be "
                                 f'non-negative ints summing to height x width = '
                                 f'{height * width}')
            return
        if not isinstance(counts, (str, bytes)):
            raise ValueError(f"{where}: key '{key}': RLE counts must be a str or a list, got "
                             f'{type(counts).__name__}')
        if not self.decode_counts:
            return
        self._queue.append((counts, height * width, where, key))
        self._queued_chars += len(counts)
        if self._queued_chars >= self.batch_chars:
            self._flush()

    def _flush(self) -> None:
        queue, self._queue, self._queued_chars = self._queue, [], 0
        decoded = rle_string_counts([item[0] for item in queue])
        for (counts, pixels, where, key), runs in zip(queue, decoded):
            if runs is None:
                raise ValueError(f"{where}: key '{key}': RLE counts {_short(counts)} is not a "
                                 'valid compressed RLE string')
            if runs.sum() != pixels:
                raise ValueError(f"{where}: key '{key}': RLE counts decode to {runs.sum()} "
                                 f'pixels, but size is height x width = {pixels} (wrong size or '
                                 'corrupted counts)')

    def finish(self) -> None:
        """Decode and check what is still queued."""
        if self._queue:
            self._flush()


def _short(counts: Union[str, bytes], limit: int = 20) -> str:
    text = counts.decode('ascii', 'replace') if isinstance(counts, bytes) else counts
    return repr(text if len(text) <= limit else text[:limit] + '...')
