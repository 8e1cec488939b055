"""ART's sliding-window stop criterion, in plain Python."""
import math
from typing import Any, Dict, List, Optional, Tuple

#: How a new window is compared with the stored best entry.
WINDOW_RULES = ('best_mean', 'best_middle')


class SlidingWindow:
    """Window over the scores of the magnitude-pruned copy of the model.

    After every ART step the score of the pruned copy (accuracy, or the
    negated loss: higher is better) is appended; the window keeps the last
    ``2·buffer + 1`` entries. Whenever the window mean beats the stored best
    (see ``rule``), the window's middle entry becomes the best pruned model
    (``min(len − 1, buffer)`` while the window fills up) and the window mean
    is stored with it. ART stops when the stored best window mean exceeds
    the dense model's score of the current step.

    The two rules differ in what a new window mean is compared with:

    * ``'best_mean'``: the best window *mean* stored so far, so the stored
      mean only grows and the criterion fires as soon as any window's mean
      beats the dense score;
    * ``'best_middle'``: the stored best model's own score (the *middle*
      entry of its window), as the reference code
      (GreenAutoML4FAS/HyperSparse, ``utils/art.py``) does. A single high
      middle score blocks later windows, so the stored mean can fall, stop
      later or never: pruned scores ``[0, 0, 90, 0, 40]`` with a dense
      score of 35 never stop under it, while ``'best_mean'`` stops at the
      fifth step with the fourth as the best model.

    The reference starts from a stored score of 0; here the first window
    always becomes the best (the same choices for non-negative scores, and
    defined for the negated losses of the loss criterion).

    Args:
        buffer (int): Half width; window size ``2·buffer + 1``. Defaults to 1.
        rule (str): ``'best_mean'`` or ``'best_middle'`` (the reference
            code's). Defaults to ``'best_mean'``.
    """

    def __init__(self, buffer: int = 1, rule: str = 'best_mean') -> None:
        if isinstance(buffer, bool) or not isinstance(buffer, int) \
                or buffer < 0:
            raise ValueError(f'buffer must be an int >= 0, got {buffer!r}')
        if rule not in WINDOW_RULES:
            raise ValueError(f'window_rule must be one of {WINDOW_RULES}, '
                             f'got {rule!r}')
        self.buffer = buffer
        self.rule = rule
        self.entries: List[Tuple[int, float]] = []
        self.best: Optional[Dict[str, float]] = None

    @property
    def size(self) -> int:
        """Maximum number of entries."""
        return 2 * self.buffer + 1

    @property
    def mean(self) -> float:
        """Mean score of the current entries (nan when empty)."""
        if not self.entries:
            return math.nan
        return sum(score for _, score in self.entries) / len(self.entries)

    def middle(self) -> Tuple[int, float]:
        """``(step, score)`` of the middle entry."""
        if not self.entries:
            raise RuntimeError('the window is empty')
        return self.entries[min(len(self.entries) - 1, self.buffer)]

    def update(self, step: int, score: float) -> bool:
        """Append a score; return whether the best entry changed."""
        if not math.isfinite(score):
            raise ValueError(f'score must be finite, got {score}')
        self.entries.append((int(step), float(score)))
        if len(self.entries) > self.size:
            self.entries.pop(0)
        mean = self.mean
        bar = None if self.best is None else self.best[
            'mean' if self.rule == 'best_mean' else 'score']
        if bar is None or mean > bar:
            mid_step, mid_score = self.middle()
            self.best = dict(step=mid_step, score=mid_score, mean=mean)
            return True
        return False

    def should_stop(self, dense_score: float) -> bool:
        """Whether the best window mean exceeds the dense model's score."""
        return self.best is not None and self.best['mean'] > dense_score

    def state_dict(self) -> Dict[str, Any]:
        """Everything needed to continue identically."""
        return dict(
            buffer=self.buffer,
            rule=self.rule,
            entries=[list(e) for e in self.entries],
            best=None if self.best is None else dict(self.best))

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        if state['buffer'] != self.buffer:
            raise ValueError(f'window buffer mismatch: checkpoint has '
                             f'{state["buffer"]}, the hook {self.buffer}')
        # a state without 'rule' comes from a 'best_mean' window
        saved = state.get('rule', 'best_mean')
        if saved != self.rule:
            raise ValueError(f'window_rule mismatch: checkpoint has '
                             f'{saved!r}, the hook {self.rule!r}')
        self.entries = [(int(s), float(v)) for s, v in state['entries']]
        self.best = None if state['best'] is None else dict(state['best'])
