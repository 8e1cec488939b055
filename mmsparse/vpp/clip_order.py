"""The order in which the frames of a training clip run through VPP.

VPP prunes a frame with the prior of the frame run before it, so the order
in which a clip's frames are run decides which temporal hops the selector
learns. Two orders (plain Python, no torch):

* ``'forward'``: time order, ``[0, 1, ..., T - 1]`` of a clip sorted by
  time (what mmdet's ``UniformRefFrameSample`` yields).
* ``'official'``: the order of the official training code
  (PatGlan/Video-Patch-Pruning): its clip is a key frame and two reference
  frames sorted by time; the pipeline takes the *later* reference frame as
  the first (dense) frame, then runs the earlier reference frame, then the
  key frame. So the first hop always goes backward in time and the second
  goes to the key frame, before or after the references. For ``T`` frames
  this generalises to: the latest reference frame, the other reference
  frames in time order, the key frame last.
"""
import random
from typing import List, Optional

#: Run orders of a training clip.
CLIP_ORDERS = ('forward', 'official')


def clip_run_order(num_frames: int,
                   key_index: Optional[int] = None,
                   order: str = 'forward',
                   rng: Optional[random.Random] = None) -> List[int]:
    """Positions (in the time-sorted clip) in the order they are run.

    Args:
        num_frames (int): Frames T of the clip, >= 1.
        key_index (int, optional): Position of the key frame in the
            time-sorted clip (mmdet's ``key_frames_inds[0]``). None: drawn
            uniformly with ``rng`` (only used by ``'official'``).
            Defaults to None.
        order (str): ``'forward'`` or ``'official'``. Defaults to
            ``'forward'``.
        rng (random.Random, optional): Source of the key position when
            ``key_index`` is None. Defaults to None (the ``random`` module).

    Returns:
        list[int]: A permutation of ``range(num_frames)``.

    Examples:
        >>> clip_run_order(3, 0, 'official')  # key first in time
        [2, 1, 0]
        >>> clip_run_order(3, 1, 'official')
        [2, 0, 1]
        >>> clip_run_order(3, 2, 'official')
        [1, 0, 2]
    """
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) \
            or num_frames < 1:
        raise ValueError(f'clip_run_order: num_frames must be an int >= 1, '
                         f'got {num_frames!r}')
    if order not in CLIP_ORDERS:
        raise ValueError(f'clip_run_order: order must be one of '
                         f'{CLIP_ORDERS}, got {order!r}')
    if order == 'forward' or num_frames == 1:
        return list(range(num_frames))
    if key_index is None:
        key_index = (rng or random).randrange(num_frames)
    if isinstance(key_index, bool) or not isinstance(key_index, int) \
            or not 0 <= key_index < num_frames:
        raise ValueError(f'clip_run_order: key_index must be an int in '
                         f'[0, {num_frames - 1}], got {key_index!r}')
    refs = [t for t in range(num_frames) if t != key_index]
    return [refs[-1]] + refs[:-1] + [key_index]
