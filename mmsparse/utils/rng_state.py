"""Save and restore the global random streams (python, numpy, torch).

A resumed run continues the data augmentation stream of the uninterrupted
one when the augmentation draws from the global generators of the training
process (``num_workers=0``). Data-loader workers re-seed themselves
(mmengine's ``worker_init_fn``: ``num_workers·rank + worker_id + seed``, the
same every epoch), so non-persistent workers repeat their stream after an
epoch boundary either way; the state of persistent workers is not saved.
"""
import random
from typing import Any, Dict

import numpy as np
import torch


def get_rng_state() -> Dict[str, Any]:
    """The states of python's, numpy's and torch's (CPU, CUDA) global
    generators."""
    state = dict(
        python=random.getstate(),
        numpy=np.random.get_state(),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    """Restore a state of :func:`get_rng_state`."""
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'].cpu())
    cuda = state.get('cuda')
    if cuda is not None and torch.cuda.is_available() \
            and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


class RNGRestoringIterator:
    """Wraps a data iterator: the first ``skip`` batches are drawn without
    touching the global random streams, then ``state`` is restored before the
    next batch is drawn.

    mmengine's ``IterBasedTrainLoop`` replays ``runner.iter`` batches after a
    resume to reach the data position; drawn under the restored state, the
    replay would consume the stream the next batches need.
    """

    def __init__(self, iterator, skip: int, state: Dict[str, Any]) -> None:
        self._iterator = iterator
        self._skip = skip
        self._state = state

    def __iter__(self):
        return self

    def __next__(self):
        if self._skip > 0:
            self._skip -= 1
            saved = get_rng_state()
            try:
                return next(self._iterator)
            finally:
                set_rng_state(saved)
        if self._state is not None:
            set_rng_state(self._state)
            self._state = None
        return next(self._iterator)

    def __getattr__(self, name):
        return getattr(self._iterator, name)
