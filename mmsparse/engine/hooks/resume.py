"""What the pruning hooks restore on resume, as runner plumbing.

The hook's own state, kept from ``after_load_checkpoint`` until
``before_train`` knows whether the run resumes; and the global random
streams (:mod:`mmsparse.utils.rng_state`): rank 0's are saved with every
checkpoint and restored right before the first batch of the resumed run.
"""
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop

from mmsparse.art import to_cpu
from mmsparse.utils.rng_state import (RNGRestoringIterator, get_rng_state,
                                      set_rng_state)

#: Top-level checkpoint key of the global random streams.
RNG_STATE_KEY = 'rng_state'


class RandomStreamResume:
    """Saves the global random streams and continues them on resume.

    Call :meth:`save` in ``before_save_checkpoint``, :meth:`load` in
    ``after_load_checkpoint``, :meth:`before_train` and
    :meth:`before_train_epoch` in the hook stages of the same names.
    """

    def __init__(self) -> None:
        self._loaded: Optional[dict] = None
        self._pending: Optional[dict] = None

    @staticmethod
    def save(checkpoint: dict) -> None:
        # rank 0 saves (mmengine's save_checkpoint is master-only): its
        # streams; other ranks continue from the seed on resume
        checkpoint[RNG_STATE_KEY] = get_rng_state()

    def load(self, checkpoint: dict) -> None:
        if checkpoint.get(RNG_STATE_KEY) is not None and is_main_process():
            self._loaded = checkpoint[RNG_STATE_KEY]

    def before_train(self, runner) -> None:
        """Continue the saved streams right before the first batch
        (epoch-based loops draw it after ``before_train_epoch``; the
        iteration-based loop first replays ``runner.iter`` batches, which
        must not consume the stream)."""
        state, self._loaded = self._loaded, None
        if state is None or runner.iter == 0:
            return
        loop = runner.train_loop
        if isinstance(loop, IterBasedTrainLoop):
            loop.dataloader_iterator = RNGRestoringIterator(
                loop.dataloader_iterator, runner.iter, state)
        else:
            self._pending = state

    def before_train_epoch(self) -> None:
        state, self._pending = self._pending, None
        if state is not None:
            set_rng_state(state)


class DeferredHookState:
    """A hook's checkpoint state, applied only when the run resumes.

    Args:
        owner (str): The hook's class name (log messages).
        key (str): Top-level checkpoint key of the state.
    """

    def __init__(self, owner: str, key: str) -> None:
        self.owner = owner
        self.key = key
        self._state: Optional[dict] = None

    def load(self, checkpoint: dict) -> None:
        """Keep the state of a loaded checkpoint (on the CPU)."""
        state = checkpoint.get(self.key)
        if state is None:
            print_log(
                f'{self.owner}: no "{self.key}" in the checkpoint; starting '
                'without pruning state',
                logger='current')
            return
        self._state = to_cpu(state)

    def take(self, runner) -> Optional[dict]:
        """The kept state if the run resumes (``runner.iter > 0``), else
        None (``load_from``: the state is ignored, with a message)."""
        state, self._state = self._state, None
        if state is not None and runner.iter == 0:
            print_log(
                f'{self.owner}: the loaded checkpoint holds pruning state but '
                'training starts at iteration 0 (load_from, not resume); the '
                'state is ignored and pruning starts afresh',
                logger='current')
            return None
        return state
